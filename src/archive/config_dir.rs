//! What a Home Assistant config dir says about itself: the version that last ran it
//! (`.HA_VERSION`) and the instance's id (`.storage/core.uuid`).

use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::{ArchiveError, IoContext};

/// The Home Assistant version a backup of `config_dir` records: `explicit` when given, else the
/// dir's `.HA_VERSION`, which Home Assistant writes on every start. A dir without one is not a
/// Home Assistant config dir, and no version is made up for it.
pub fn ha_version(config_dir: &Path, explicit: Option<&str>) -> Result<String, ArchiveError> {
    if let Some(version) = explicit {
        return Ok(version.to_string());
    }
    let file = config_dir.join(".HA_VERSION");
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) => {
            // A missing config dir is reported as that, not as a missing .HA_VERSION.
            let meta = fs::metadata(config_dir).at(config_dir)?;
            if !meta.is_dir() {
                return Err(ArchiveError::InvalidArgument(format!(
                    "config dir {} is not a directory",
                    config_dir.display()
                )));
            }
            if err.kind() == io::ErrorKind::NotFound {
                return Err(ArchiveError::failed(
                    config_dir,
                    "is not a Home Assistant config dir: it has no .HA_VERSION (give the Home \
                     Assistant version explicitly to back it up anyway)",
                ));
            }
            return Err(ArchiveError::io(&file, err));
        }
    };
    let version = text.trim();
    if version.is_empty() || version.len() > 64 || version.chars().any(char::is_control) {
        return Err(ArchiveError::invalid(
            &file,
            "does not hold a Home Assistant version",
        ));
    }
    Ok(version.to_string())
}

/// Home Assistant's instance id lives in `.storage/core.uuid`; a config dir without one (never
/// started) gets a fresh id.
pub fn read_instance_id(config_dir: &Path) -> String {
    let stored: Option<String> = fs::read(config_dir.join(".storage").join("core.uuid"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.get("data")?.get("uuid")?.as_str().map(str::to_string));
    stored.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}
