//! The archiver: Home Assistant's backup format, written and read in pure Rust.

pub(crate) mod atomic;
mod beneath;
mod cancel;
mod create;
mod deflate;
mod encrypt_thread;
mod error;
mod escape;
mod excludes;
mod extract;
mod gzip;
#[cfg(test)]
mod header_fuzz;
pub(crate) mod metadata;
mod policy;
mod priority;
mod read;
mod tar_header;
mod tar_reader;
mod unpack;
mod verify;
mod walk;

pub use cancel::CancelFlag;
pub use create::{create_archive, CreateOptions, ProgressFn, DEFAULT_HA_VERSION};
pub use error::{ArchiveError, IoContext};
pub use escape::{escaped, quoted};
pub use excludes::{Excludes, Pattern, DATABASE_EXCLUDES, DEFAULT_EXCLUDES};
pub use extract::{extract_archive, extract_protected_archive, extract_shown_as};
pub use metadata::{make_slug, BackupInfo};
pub use policy::ExtractSummary;
pub use read::{read_backup, validate_password};
pub use verify::{verify_archive, VerifyReport};
