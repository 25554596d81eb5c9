//! Submits: idempotency, refused input, and the paced submitter.

mod idempotency;
mod submitter;
