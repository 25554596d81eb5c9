//! Waits that end at a webhook delivery.

mod receiver;
mod safety_net;
mod waits;
