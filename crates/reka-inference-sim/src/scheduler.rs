//! The one background task of the queue model: it advances every lane at
//! each job's end instant (on the simulator's clock), so terminal states
//! (and their webhooks) happen on time even when nobody polls. Requests
//! advance lanes themselves too, and so does a manual clock's `advance`.

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
        let until_next = async {
            match next {
                Some(at) => state.clock.sleep_until(at).await,
                // A manual clock moves only by `advance`, which processes
                // the lanes itself: nothing to wait for but a wake.
                None if state.clock.is_manual() => std::future::pending().await,
                None => tokio::time::sleep(IDLE).await,
            }
        };
        tokio::select! {
            _ = until_next => {}
            _ = state.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
