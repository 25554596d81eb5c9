//! Waits that end at a webhook delivery.

mod waits;
