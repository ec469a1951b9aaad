//! How long work reports how far it got.

use std::sync::Arc;

/// `(bytes_done, bytes_total)`, callable from any thread. Callers throttle; implementations
/// must be cheap (the archiver calls it from its background threads).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;
