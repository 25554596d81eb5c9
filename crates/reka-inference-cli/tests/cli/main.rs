//! Integration tests: the built `reka-inference` binary against the
//! simulator, as a person or a script would run it.

mod batch;
mod batch_crash;
mod batch_hostile;
mod chat_compat;
mod commands;
mod common;
mod dialects;
mod errors;
mod hostile;
mod inputs;
mod interrupt;
mod mcp;
mod webhook;
