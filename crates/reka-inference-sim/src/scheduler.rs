//! The one background task of the queue model: it advances every lane at
//! each job's end instant, so terminal states (and their webhooks) happen on
//! time even when nobody polls. Requests advance lanes themselves too.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// Longest sleep when no job is running (a submit wakes the task earlier).
const IDLE: Duration = Duration::from_secs(60);

/// Runs until `shutdown` changes or its sender is dropped.
pub(crate) async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let next = state.with_store(|store, now, done| {
            store.advance_all(now, done);
            store.next_event()
        });
        let deadline = match next {
            Some(at) => tokio::time::Instant::from_std(state.clock.instant(at)),
            None => tokio::time::Instant::now() + IDLE,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = state.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
