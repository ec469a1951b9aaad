//! Restore: a config dir's contents replaced by a backup's, completely or not at all, even when
//! the process is killed half way. The one restore: the manager's and the command line's.
//!
//! 1. The backup is extracted into a staging dir inside the config dir (same filesystem, so every
//!    later step is a rename; the config dir itself may be a mount point, as in a container). A
//!    wrong password or corrupt data stops here, with nothing changed.
//! 2. A journal naming every entry to move out and in is written and synced.
//! 3. The current entries move into an aside dir, the staged ones in. A failure moves everything
//!    back.
//! 4. The journal goes, then the aside dir.
//!
//! A restore killed during step 3 leaves its journal and an unlocked staging dir. The next
//! restore or backup of that config dir ([`recover`]) finishes it: the staged tree is complete,
//! so the swap is rolled forward and the dir is never left half old, half new.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::extract::unpack_into;
use super::policy::ExtractSummary;
use super::{priority, read_backup, ArchiveError, CancelToken, IoContext, DATABASE_FILES};
use crate::common::atomic::{abandoned, is_temp_name, open_entry, parent_of, try_lock, TempDir};

/// What every restore keeps as it is: the backups themselves.
const ALWAYS_KEPT: &[&str] = &["backups"];
const RESTORE_PREFIX: &str = ".habackup-restore-";
const JOURNAL_SUFFIX: &str = ".journal";
/// The journal while it is written: renamed to its name only once whole and synced, so a kill
/// while writing it leaves a draft (the swap never began), never a torn journal.
const DRAFT_SUFFIX: &str = ".journal-draft";
const STAGING_SUFFIX: &str = ".new";
const ASIDE_SUFFIX: &str = ".old";
const LOG: &str = "habackup.restore";

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub password: Option<String>,
    /// False keeps the current recorder database (so does a backup made without one).
    pub restore_database: bool,
    /// More top-level names of the config dir to leave alone (the manager's backup dir).
    pub keep: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub slug: String,
    pub name: String,
    pub summary: ExtractSummary,
    pub database_restored: bool,
    pub database_in_backup: bool,
}

/// The journal of one swap: enough to finish it from any point.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    out: Vec<String>,
    #[serde(rename = "in")]
    into: Vec<String>,
}

/// The three entries of one restore in the config dir.
struct Names {
    journal: PathBuf,
    draft: PathBuf,
    staging: PathBuf,
    aside: PathBuf,
}

impl Names {
    fn new(config_dir: &Path, token: &str) -> Names {
        let base = format!("{RESTORE_PREFIX}{token}");
        Names {
            journal: config_dir.join(format!("{base}{JOURNAL_SUFFIX}")),
            draft: config_dir.join(format!("{base}{DRAFT_SUFFIX}")),
            staging: config_dir.join(format!("{base}{STAGING_SUFFIX}")),
            aside: config_dir.join(format!("{base}{ASIDE_SUFFIX}")),
        }
    }
}

/// Replaces `config_dir`'s contents with the backup's at `archive`.
pub fn restore_into(
    archive: &Path,
    config_dir: &Path,
    options: &RestoreOptions,
    cancel: &CancelToken,
) -> Result<RestoreReport, ArchiveError> {
    let meta = fs::metadata(config_dir).at(config_dir)?;
    if !meta.is_dir() {
        return Err(ArchiveError::InvalidArgument(format!(
            "{} is not a directory (extract a backup into a new one instead)",
            config_dir.display()
        )));
    }
    recover(config_dir)?;
    let info = read_backup(archive)?;
    // A backup made without the database must not take the current one away.
    let database_restored = options.restore_database && info.database_included;
    let mut keep: BTreeSet<String> = ALWAYS_KEPT.iter().map(|s| (*s).to_string()).collect();
    keep.extend(options.keep.iter().cloned());
    keep.extend(entry_holding(archive, config_dir));
    if !database_restored {
        keep.extend(DATABASE_FILES.iter().map(|s| (*s).to_string()));
    }

    let token = uuid::Uuid::new_v4().simple().to_string();
    let names = Names::new(config_dir, &token[..12]);
    let staging = TempDir::create(names.staging.clone()).at(config_dir)?;
    // The key derivation and extraction run in the background like any extraction.
    // Errors name files under the config dir, never the staging dir.
    let summary = priority::run_in_background(|| {
        unpack_into(
            archive,
            staging.path(),
            config_dir,
            options.password.as_deref(),
            cancel,
        )
    })?;
    cancel.check()?;
    // From here on the swap is not cancelled: it takes milliseconds and must not be torn.
    swap(config_dir, &names, &keep)?;
    drop(staging);
    Ok(RestoreReport {
        slug: info.slug,
        name: info.name,
        summary,
        database_restored,
        database_in_backup: info.database_included,
    })
}

/// The top-level entry of `config_dir` that holds `archive`, if it is inside: restoring from
/// `CONFIG_DIR/some/backup.tar` must not move away the file being restored.
fn entry_holding(archive: &Path, config_dir: &Path) -> Option<String> {
    let archive = archive.canonicalize().ok()?;
    let config_dir = config_dir.canonicalize().ok()?;
    let relative = archive.strip_prefix(config_dir).ok()?;
    relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
}

fn sorted_names(dir: &Path) -> Result<Vec<String>, ArchiveError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name();
        // Our own temp entries (this restore's among them) are never moved.
        if is_temp_name(&name) {
            continue;
        }
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

fn write_journal(names: &Names, journal: &Journal) -> Result<File, ArchiveError> {
    let text = serde_json::to_vec(journal)
        .map_err(|e| ArchiveError::failed(&names.journal, e.to_string()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&names.draft)
        .at(parent_of(&names.journal))?;
    // The lock follows the file through the rename: the journal is owned from the start.
    try_lock(&file).at(parent_of(&names.journal))?;
    let written = file
        .write_all(&text)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&names.draft, &names.journal));
    if let Err(err) = written {
        let _ = fs::remove_file(&names.draft);
        return Err(ArchiveError::io(parent_of(&names.journal), err));
    }
    sync_dir(parent_of(&names.journal));
    Ok(file)
}

fn swap(config_dir: &Path, names: &Names, keep: &BTreeSet<String>) -> Result<(), ArchiveError> {
    let journal = Journal {
        out: sorted_names(config_dir)?
            .into_iter()
            .filter(|n| !keep.contains(n))
            .collect(),
        into: sorted_names(&names.staging)?
            .into_iter()
            .filter(|n| !keep.contains(n))
            .collect(),
    };
    let lock = write_journal(names, &journal)?;
    fs::create_dir(&names.aside).at(config_dir)?;
    let mut moved_out = 0;
    let mut moved_in = 0;
    let result = (|| -> io::Result<()> {
        for name in &journal.out {
            fs::rename(config_dir.join(name), names.aside.join(name))?;
            moved_out += 1;
        }
        for name in &journal.into {
            fs::rename(names.staging.join(name), config_dir.join(name))?;
            moved_in += 1;
        }
        Ok(())
    })();
    if let Err(failure) = result {
        let undone = (|| -> io::Result<()> {
            for name in journal.into[..moved_in].iter().rev() {
                fs::rename(config_dir.join(name), names.staging.join(name))?;
            }
            for name in journal.out[..moved_out].iter().rev() {
                fs::rename(names.aside.join(name), config_dir.join(name))?;
            }
            fs::remove_dir(&names.aside)
        })();
        return match undone {
            Ok(()) => {
                let _ = fs::remove_file(&names.journal);
                drop(lock);
                Err(ArchiveError::io(config_dir, failure))
            }
            // The journal stays: the next restore or backup of this dir finishes the swap.
            Err(undo) => Err(ArchiveError::failed(
                config_dir,
                format!(
                    "the restore failed ({failure}) and undoing it failed too ({undo}); the \
                     previous contents are in {} and the next habackup restore or backup of this \
                     directory finishes the restore",
                    names.aside.display()
                ),
            )),
        };
    }
    finish(config_dir, names);
    drop(lock);
    Ok(())
}

/// The swap is done. The (now empty) staging dir goes first, then the journal (the dir is all
/// new now), then what was replaced: an aside dir with neither beside it is a finished restore's.
fn finish(config_dir: &Path, names: &Names) {
    let _ = fs::remove_dir_all(&names.staging);
    let _ = fs::remove_file(&names.journal);
    sync_dir(config_dir);
    if let Err(err) = fs::remove_dir_all(&names.aside) {
        // The restore itself succeeded; say what is left rather than fail it.
        log::warn!(target: LOG, "restored, but could not delete the replaced files in {}: {err}", names.aside.display());
    }
}

/// Whether the entry at `path` has no live owner (its lock can be taken), or does not exist.
fn ownerless(path: &Path) -> bool {
    match open_entry(path) {
        Ok(file) => try_lock(&file).unwrap_or(false),
        Err(err) => err.kind() == io::ErrorKind::NotFound,
    }
}

/// Finishes a restore of `config_dir` that was killed half way, and removes what a finished or
/// abandoned one left. Returns how many interrupted restores were finished.
pub fn recover(config_dir: &Path) -> Result<usize, ArchiveError> {
    let Ok(entries) = fs::read_dir(config_dir) else {
        return Ok(0);
    };
    let mut tokens = BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(RESTORE_PREFIX) {
            let token = [JOURNAL_SUFFIX, DRAFT_SUFFIX, STAGING_SUFFIX, ASIDE_SUFFIX]
                .iter()
                .find_map(|suffix| rest.strip_suffix(suffix));
            if let Some(token) = token {
                tokens.insert(token.to_string());
            }
        }
    }
    let mut finished = 0;
    for token in tokens {
        let names = Names::new(config_dir, &token);
        // A live restore holds its staging dir's lock from creation to the end.
        if !ownerless(&names.staging) || !ownerless(&names.journal) || !ownerless(&names.draft) {
            continue;
        }
        // A draft never became the journal: that swap never began.
        let _ = fs::remove_file(&names.draft);
        match fs::read(&names.journal) {
            Ok(bytes) => {
                let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
                    ArchiveError::failed(
                        &names.journal,
                        format!("the journal of an interrupted restore is unreadable ({e}); finish or undo it by hand"),
                    )
                })?;
                roll_forward(config_dir, &names, &journal)?;
                finish(config_dir, &names);
                log::warn!(target: LOG, "finished a restore of {} that was interrupted", config_dir.display());
                finished += 1;
            }
            // No journal: the swap never began (a partial staging dir) or had ended (a leftover
            // aside dir). Either way the config dir is whole; what is left goes once it is
            // surely nobody's (a brand-new staging dir is locked a moment after it appears).
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let staging_left = fs::symlink_metadata(&names.staging).is_ok();
                if staging_left && abandoned(&names.staging).is_some() {
                    let _ = fs::remove_dir_all(&names.staging);
                }
                if !staging_left || abandoned(&names.aside).is_some() {
                    let _ = fs::remove_dir_all(&names.aside);
                }
            }
            Err(err) => return Err(ArchiveError::io(&names.journal, err)),
        }
    }
    Ok(finished)
}

/// Completes the swap the journal describes, from wherever it stopped: every move out happened
/// before any move in, so an old entry still in place has not moved yet, and a staged one still
/// in the staging dir has not moved in yet.
fn roll_forward(config_dir: &Path, names: &Names, journal: &Journal) -> Result<(), ArchiveError> {
    let fail = |what: &str, err: io::Error| {
        ArchiveError::failed(
            config_dir,
            format!(
                "cannot finish an interrupted restore ({what}: {err}); its files are in {} and {}",
                names.aside.display(),
                names.staging.display()
            ),
        )
    };
    match fs::create_dir(&names.aside) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(fail("aside dir", err)),
    }
    for name in &journal.out {
        let old = config_dir.join(name);
        let moved = names.aside.join(name);
        if fs::symlink_metadata(&moved).is_err() && fs::symlink_metadata(&old).is_ok() {
            fs::rename(&old, &moved).map_err(|e| fail(name, e))?;
        }
    }
    for name in &journal.into {
        let staged = names.staging.join(name);
        if fs::symlink_metadata(&staged).is_ok() {
            fs::rename(&staged, config_dir.join(name)).map_err(|e| fail(name, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A swap killed after two of three moves out is rolled forward by the next call.
    #[test]
    fn an_interrupted_swap_is_rolled_forward() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path();
        for name in ["a.yaml", "b.yaml", "old-only"] {
            fs::write(config.join(name), "old").unwrap();
        }
        fs::create_dir(config.join("backups")).unwrap();
        let names = Names::new(config, "0123456789ab");
        fs::create_dir(&names.staging).unwrap();
        for name in ["a.yaml", "b.yaml", "new-only"] {
            fs::write(names.staging.join(name), "new").unwrap();
        }
        let journal = Journal {
            out: vec!["a.yaml".into(), "b.yaml".into(), "old-only".into()],
            into: vec!["a.yaml".into(), "b.yaml".into(), "new-only".into()],
        };
        fs::write(&names.journal, serde_json::to_vec(&journal).unwrap()).unwrap();
        fs::create_dir(&names.aside).unwrap();
        fs::rename(config.join("a.yaml"), names.aside.join("a.yaml")).unwrap();
        fs::rename(config.join("b.yaml"), names.aside.join("b.yaml")).unwrap();

        assert_eq!(recover(config).unwrap(), 1);
        assert_eq!(tree(config), ["a.yaml", "b.yaml", "backups", "new-only"]);
        for name in ["a.yaml", "b.yaml", "new-only"] {
            assert_eq!(fs::read_to_string(config.join(name)).unwrap(), "new");
        }
        assert_eq!(recover(config).unwrap(), 0);
    }

    /// A restore killed while writing its journal leaves a torn draft: the swap never began,
    /// so the config dir is whole and the draft simply goes.
    #[test]
    fn a_torn_journal_draft_is_not_taken_for_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path();
        fs::write(config.join("a.yaml"), "old").unwrap();
        let names = Names::new(config, "0123456789ab");
        fs::create_dir(&names.staging).unwrap();
        fs::write(names.staging.join("a.yaml"), "new").unwrap();
        fs::write(&names.draft, b"{\"out\": [\"a.ya").unwrap();
        assert_eq!(recover(config).unwrap(), 0);
        assert!(!names.draft.exists());
        assert_eq!(fs::read_to_string(config.join("a.yaml")).unwrap(), "old");
    }

    #[test]
    fn leftovers_without_a_journal_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new(dir.path(), "0123456789ab");
        fs::create_dir(&names.staging).unwrap();
        fs::write(names.staging.join("half"), "x").unwrap();
        fs::create_dir(&names.aside).unwrap();
        fs::write(dir.path().join("kept"), "x").unwrap();
        assert_eq!(recover(dir.path()).unwrap(), 0);
        assert_eq!(
            tree(dir.path()).len(),
            3,
            "too new to be taken for abandoned"
        );
        // Without its staging dir an aside dir is a finished restore's: it goes at once.
        let finished = Names::new(dir.path(), "ba9876543210");
        fs::create_dir(&finished.aside).unwrap();
        assert_eq!(recover(dir.path()).unwrap(), 0);
        assert!(!finished.aside.exists());
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for leftover in [&names.staging, &names.aside] {
            File::open(leftover).unwrap().set_modified(old).unwrap();
        }
        assert_eq!(recover(dir.path()).unwrap(), 0);
        assert_eq!(tree(dir.path()), ["kept"]);
    }

    #[test]
    fn a_live_restore_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new(dir.path(), "0123456789ab");
        let staging = TempDir::create(names.staging.clone()).unwrap();
        assert_eq!(recover(dir.path()).unwrap(), 0);
        assert!(staging.path().exists());
    }
}
