//! The one cancellation token. It is set from anywhere (a cancelled Python await, Ctrl-C, a
//! dropped future, a failed sibling task); blocking work polls it between chunks and async work
//! awaits it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The error of work that stopped because its token was cancelled.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("operation cancelled")]
pub struct Cancelled;

impl Cancelled {
    /// As an `io::Error`, for work behind a `Read`/`Write` interface. Not
    /// `ErrorKind::Interrupted`: `write_all` and `read_exact` retry those forever.
    pub fn io() -> io::Error {
        io::Error::other(Cancelled)
    }

    /// Whether an `io::Error` is one made by [`Cancelled::io`].
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
    }
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

/// Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<Inner>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        if !self.0.cancelled.swap(true, Ordering::SeqCst) {
            self.0.notify.notify_waiters();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled: `token.check()?` between chunks of blocking work.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a cancel between the two is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `work` unless the token is cancelled first.
    pub async fn run<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, Cancelled> {
        tokio::select! {
            biased;
            () = self.cancelled() => Err(Cancelled),
            out = work => Ok(out),
        }
    }

    /// A guard that cancels the token when dropped before [`CancelOnDrop::disarm`]: a Rust
    /// future dropped half way because its Python awaitable went away stops the blocking work it
    /// started.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

#[must_use = "the guard cancels when dropped; disarm it once the work has ended"]
pub struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    /// The work ended: dropping the guard now cancels nothing.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_state() {
        let token = CancelToken::new();
        let other = token.clone();
        assert!(token.check().is_ok());
        other.cancel();
        assert!(token.is_cancelled());
        assert!(token.check().is_err());
        assert!(Cancelled::is(&Cancelled::io()));
        assert!(!Cancelled::is(&io::Error::other("x")));
    }

    #[test]
    fn waiters_wake_and_guards_cancel() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let token = CancelToken::new();
        let waiter = token.clone();
        runtime.block_on(async move {
            let waiting = tokio::spawn(async move { waiter.cancelled().await });
            tokio::task::yield_now().await;
            token.cancel_on_drop().disarm();
            assert!(!token.is_cancelled());
            drop(token.cancel_on_drop());
            waiting.await.unwrap();
            assert!(token.run(std::future::pending::<()>()).await.is_err());
        });
    }
}
