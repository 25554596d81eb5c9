//! The server's open connections: a cap on how many there are, and which
//! one gives way when a new one needs room.
//!
//! Idle or half-open connections (a client that connected and sends
//! nothing, a pool that keeps sockets around) would otherwise use up the
//! process's file descriptors until the API stops answering. At the cap,
//! or when accepting fails for want of file descriptors (a low `ulimit
//! -n`), the accept loop asks the connection idle the longest (no request
//! in progress) to close, and waits for a close before it accepts again; a
//! connection with a request in progress is never chosen. Idle ones also
//! close on their own after the header read timeout (hyper's).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::state::lock;

/// Every open connection, under a cap.
#[derive(Debug)]
pub(crate) struct Connections {
    cap: usize,
    table: Mutex<Table>,
    /// Signalled when a connection closes.
    closed: Notify,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Conn>>,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Requests in progress on it.
    busy: AtomicUsize,
    /// When it opened, or last began or finished a request.
    last_active: Mutex<Instant>,
    /// Set once it was chosen to make room.
    evicting: AtomicBool,
    /// Tells its task to close it (a stored permit: never missed).
    evicted: Notify,
}

impl Connections {
    /// No connection yet; at most `cap` at once (at least 1).
    pub(crate) fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            table: Mutex::new(Table::default()),
            closed: Notify::new(),
        })
    }

    /// How many connections are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).open.len()
    }

    /// Returns once one more connection may open: at the cap, asks the
    /// longest-idle connection to close (one at a time) and waits for a
    /// connection to close.
    pub(crate) async fn room(&self) {
        loop {
            // Created before the check: a close in between leaves a permit.
            let closed = self.closed.notified();
            {
                let table = lock(&self.table);
                if table.open.len() < self.cap {
                    return;
                }
                Self::evict_idlest(&table);
            }
            closed.await;
        }
    }

    /// When the process is out of file descriptors (accept failed): asks
    /// the longest-idle connection to close and waits, up to `bound`, for a
    /// connection to close. False when no connection is idle (nothing to
    /// wait for).
    pub(crate) async fn free_one(&self, bound: std::time::Duration) -> bool {
        let closed = self.closed.notified();
        let asked = Self::evict_idlest(&lock(&self.table));
        if asked {
            let _ = tokio::time::timeout(bound, closed).await;
        }
        asked
    }

    /// Asks the longest-idle connection to close, unless one was already
    /// asked and is still open; true when one is (or was already) asked.
    fn evict_idlest(table: &Table) -> bool {
        if table
            .open
            .values()
            .any(|c| c.evicting.load(Ordering::SeqCst))
        {
            return true;
        }
        let Some(idlest) = table
            .open
            .values()
            .filter(|c| c.busy.load(Ordering::SeqCst) == 0)
            .min_by_key(|c| *lock(&c.last_active))
        else {
            return false;
        };
        idlest.evicting.store(true, Ordering::SeqCst);
        idlest.evicted.notify_one();
        tracing::debug!(
            open = table.open.len(),
            "no room for a new connection: closing the longest-idle one"
        );
        true
    }

    /// Registers a new connection; it counts until the guard is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> OpenConn {
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
            evicting: AtomicBool::new(false),
            evicted: Notify::new(),
        });
        let id = {
            let mut table = lock(&self.table);
            let id = table.next_id;
            table.next_id = table.next_id.wrapping_add(1);
            table.open.insert(id, conn.clone());
            id
        };
        OpenConn {
            connections: self.clone(),
            id,
            conn,
        }
    }
}

/// A registered connection; dropping it unregisters it.
#[derive(Debug)]
pub(crate) struct OpenConn {
    connections: Arc<Connections>,
    id: u64,
    conn: Arc<Conn>,
}

impl OpenConn {
    /// The connection, for its requests to mark themselves in progress.
    pub(crate) fn conn(&self) -> Arc<Conn> {
        self.conn.clone()
    }

    /// Resolves when the connection was chosen to make room.
    pub(crate) async fn evicted(&self) {
        self.conn.evicted.notified().await;
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        lock(&self.connections.table).open.remove(&self.id);
        self.connections.closed.notify_one();
    }
}

impl Conn {
    /// Marks a request in progress until the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InProgress {
        self.busy.fetch_add(1, Ordering::SeqCst);
        *lock(&self.last_active) = Instant::now();
        InProgress { conn: self.clone() }
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub(crate) struct InProgress {
    conn: Arc<Conn>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        *lock(&self.conn.last_active) = Instant::now();
        self.conn.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_longest_idle_connection_gives_way() {
        let conns = Connections::new(2);
        let old = conns.open();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let busy = conns.open();
        let _request = busy.conn().begin();
        // Full: the idle one is asked to close, the busy one is not.
        let waiting = {
            let conns = conns.clone();
            tokio::spawn(async move { conns.room().await })
        };
        tokio::time::timeout(std::time::Duration::from_secs(1), old.evicted())
            .await
            .expect("the idle connection is asked to close");
        assert!(!waiting.is_finished());
        drop(old);
        waiting.await.unwrap();
        assert_eq!(conns.len(), 1);
        assert!(!busy.conn.evicting.load(Ordering::SeqCst));
    }
}
