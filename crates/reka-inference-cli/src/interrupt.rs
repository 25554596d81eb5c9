//! Ctrl-C while waiting for a job.
//!
//! The handler is installed only by the commands that wait (`run`,
//! `wait`), and before their first request, so an interrupt always finds
//! it: every other command keeps the default behaviour (the process ends
//! at once).

use std::io;

/// A registered Ctrl-C (SIGINT) handler.
#[derive(Debug)]
pub struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    signal: tokio::signal::windows::CtrlC,
}

impl Interrupt {
    /// Installs the handler: from now on Ctrl-C no longer ends the process
    /// but wakes [`Interrupt::recv`].
    pub fn install() -> io::Result<Interrupt> {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        #[cfg(not(unix))]
        let signal = tokio::signal::windows::ctrl_c()?;
        Ok(Interrupt { signal })
    }

    /// Resolves at the next Ctrl-C.
    pub async fn recv(&mut self) {
        // `None` means the signal driver is gone: treat it as an interrupt
        // rather than waiting forever.
        let _ = self.signal.recv().await;
    }
}
