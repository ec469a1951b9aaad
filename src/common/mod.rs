//! What the archive and the stores both use: the cancellation token, temp files that appear
//! atomically, sha256 digests, redaction of secrets, escaping of untrusted text, the progress
//! callback type and a file writer that starts writeback as it goes.

pub mod atomic;
pub mod cancel;
pub mod digest;
pub mod progress;
pub mod redact;
pub mod text;
pub mod writeback;

pub use cancel::{CancelOnDrop, CancelToken, Cancelled};
pub use progress::Progress;
