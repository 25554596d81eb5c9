//! Behaviour tests of the simulator through real HTTP (reqwest against an
//! in-process `start()`), one module per area.

mod bad_input;
mod clock;
mod common;
mod dialects;
mod faults;
mod file_faults;
mod inputs;
mod lifecycle;
mod listing;
mod prices;
mod request_ids;
mod starvation;
mod submit_rate;
mod webhooks;
