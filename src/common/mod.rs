//! What the archive and the stores both use: the cancellation token, temp files that appear
//! atomically, sha256 digests, redaction of secrets, escaping of untrusted text and the progress
//! callback type.

pub mod atomic;
pub mod cancel;
pub mod digest;
pub mod progress;
pub mod redact;
pub mod text;

pub use cancel::{CancelOnDrop, CancelToken, Cancelled};
pub use progress::Progress;
