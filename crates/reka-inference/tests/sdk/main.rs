//! The SDK's integration tests, one binary with a module per subject,
//! run against the in-process simulator (`common::sim`) or a stand-in
//! server playing a hostile or merely different service
//! (`common::hostile`). Two suites keep binaries of their own because they
//! change process-wide state: `from_env` (the environment) and `logs`
//! (tracing's per-callsite cache).

mod common;

mod batch;
#[cfg(feature = "postgres")]
mod batch_pg;
mod chat;
mod client;
mod download;
mod hostile;
mod job;
mod job_set;
mod submit;
mod webhook;
