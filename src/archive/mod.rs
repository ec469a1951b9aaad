//! The archiver: Home Assistant's backup format, written, read, checked and restored in pure
//! Rust. `create` writes a backup, `read` finds its backup.json and inner archive (`tar_reader`
//! is our own tar parser), `extract` (with `include`'s filter), `verify` and `inspect` (list,
//! diff) decode it through one pipeline (`unpack`) and one member policy (`policy`), `restore`
//! swaps it into a config dir, `local` lists a folder of
//! them; `metadata` is backup.json and the metadata sync agents get; `config_dir` reads what a
//! config dir says about itself (its Home Assistant version, its instance id) and `destination`
//! where a new backup goes.

mod beneath;
mod config_dir;
mod create;
mod deflate;
mod destination;
mod encrypt_thread;
mod error;
mod excludes;
mod extract;
mod gzip;
#[cfg(test)]
mod header_fuzz;
mod include;
mod inner_tar;
mod inspect;
mod local;
pub(crate) mod metadata;
#[cfg(feature = "bench")]
pub mod parts;
mod policy;
mod priority;
mod read;
mod restore;
mod tar_header;
mod tar_reader;
mod unpack;
mod verify;
mod walk;

pub use crate::common::{CancelToken, Cancelled};
pub use config_dir::ha_version;
pub use create::{create_archive, CreateOptions, ProgressFn};
pub use error::{ArchiveError, IoContext};
pub use excludes::{Excludes, Pattern, DATABASE_FILES, DEFAULT_EXCLUDES};
pub use extract::{extract_archive, extract_included, extract_protected_archive, extract_shown_as};
pub use inspect::{diff_archives, list_members, ArchiveDiff, MemberInfo, MemberKind};
pub use local::{check_backup_file, find_local, list_local, Expected, LocalListing};
pub use metadata::{is_valid_slug, make_slug, sync_metadata, BackupInfo};
pub use policy::ExtractSummary;
pub use read::{read_backup, read_backup_json, validate_password, MAX_METADATA};
pub use restore::{recover, restore_into, RestoreOptions, RestoreReport};
pub use verify::{verify_archive, verify_stream, VerifyReport};
