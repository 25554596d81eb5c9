//! Chat: with outside OpenAI-compatible servers and with the simulator.

mod compat;
mod simulator;
