//! `backup.json`: writing Home Assistant's layout and reading every layout Home Assistant and the
//! Supervisor have used.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::ArchiveError;

/// What a backup says about itself, plus what we know about its file.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    pub slug: String,
    pub name: String,
    pub date: String,
    pub size: u64,
    pub path: Option<PathBuf>,
    pub protected: bool,
    pub compressed: bool,
    pub homeassistant_version: Option<String>,
    pub database_included: bool,
    pub sha256: Option<String>,
    pub extra: Map<String, Value>,
    /// Whether Home Assistant Core is in the backup (a Supervisor backup may hold add-ons only).
    pub homeassistant_included: bool,
    /// Supervisor backups: the add-ons in them, as `{"name", "slug", "version"}` objects.
    pub addons: Vec<Value>,
    /// Supervisor backups: the folders in them (`share`, `media`, `ssl`, ...).
    pub folders: Vec<String>,
}

/// The longest slug accepted; Home Assistant's are 8 characters, Supervisor's too.
const MAX_SLUG: usize = 64;

/// Whether `slug` can name a backup: slugs become file and object names (`<slug>.tar`), so only
/// letters, digits, `-` and `_`, at most 64 of them. The one rule, for every caller.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG
        && slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The metadata dict a sync agent gets for a backup (Python's `BackupSyncMetadata`), and what
/// the object-store agent keeps in its sidecar. The one builder: the manager's uploads, uploads
/// of a file, listings from a backup.json and Home Assistant's adapter all carry these keys.
pub fn sync_metadata(info: &BackupInfo) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("date".into(), Value::from(info.date.clone()));
    m.insert("slug".into(), Value::from(info.slug.clone()));
    m.insert("size".into(), Value::from(info.size));
    m.insert("name".into(), Value::from(info.name.clone()));
    m.insert(
        "homeassistant".into(),
        Value::from(info.homeassistant_version.clone().unwrap_or_default()),
    );
    m.insert("protected".into(), Value::from(info.protected));
    if let Some(sha256) = &info.sha256 {
        m.insert("sha256".into(), Value::from(sha256.clone()));
    }
    m.insert(
        "database_included".into(),
        Value::from(info.database_included),
    );
    m.insert(
        "homeassistant_included".into(),
        Value::from(info.homeassistant_included),
    );
    m.insert("addons".into(), Value::Array(info.addons.clone()));
    m.insert(
        "folders".into(),
        Value::Array(info.folders.iter().cloned().map(Value::from).collect()),
    );
    m.insert("extra".into(), Value::Object(info.extra.clone()));
    m
}

/// Home Assistant's slug: the first 8 hex digits of sha1("<date> - <name>", lowercased).
pub fn make_slug(date: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("{date} - {name}").to_lowercase().as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The fields of a backup.json that we write.
pub struct NewBackupJson<'a> {
    pub date: &'a str,
    pub name: &'a str,
    pub slug: &'a str,
    /// The whole `extra` object, as [`backup_extra`] makes it.
    pub extra: &'a Map<String, Value>,
    pub exclude_database: bool,
    pub ha_version: &'a str,
    pub protected: bool,
}

/// backup.json's `extra`: Home Assistant's `instance_id` and `with_automatic_settings` first,
/// then the caller's own keys.
pub fn backup_extra(instance_id: &str, caller: &Map<String, Value>) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("instance_id".into(), Value::String(instance_id.into()));
    extra.insert("with_automatic_settings".into(), Value::Bool(false));
    for (k, v) in caller {
        extra.insert(k.clone(), v.clone());
    }
    extra
}

/// Compact JSON with Home Assistant's key order.
pub fn render_backup_json(fields: &NewBackupJson<'_>) -> Vec<u8> {
    let extra = fields.extra.clone();
    let mut homeassistant = Map::new();
    homeassistant.insert(
        "exclude_database".into(),
        Value::Bool(fields.exclude_database),
    );
    homeassistant.insert("version".into(), Value::String(fields.ha_version.into()));

    let mut root = Map::new();
    root.insert("compressed".into(), Value::Bool(true));
    root.insert("date".into(), Value::String(fields.date.into()));
    root.insert("extra".into(), Value::Object(extra));
    root.insert("homeassistant".into(), Value::Object(homeassistant));
    root.insert("name".into(), Value::String(fields.name.into()));
    root.insert("protected".into(), Value::Bool(fields.protected));
    root.insert("slug".into(), Value::String(fields.slug.into()));
    root.insert("type".into(), Value::String("partial".into()));
    root.insert("version".into(), Value::from(2));
    // Serialising a map of plain JSON values cannot fail.
    serde_json::to_vec(&Value::Object(root)).unwrap_or_default()
}

/// Parses the backup.json (or old snapshot.json) found in `path`.
pub fn parse_backup_json(bytes: &[u8], path: &Path) -> Result<BackupInfo, ArchiveError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ArchiveError::invalid(path, format!("backup.json is not valid JSON: {e}")))?;
    let Value::Object(root) = value else {
        return Err(ArchiveError::invalid(
            path,
            "backup.json is not a JSON object",
        ));
    };
    let text = |key: &str| -> Result<String, ArchiveError> {
        match root.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ArchiveError::invalid(
                path,
                format!("backup.json field '{key}' is not a string"),
            )),
            None => Err(ArchiveError::invalid(
                path,
                format!("backup.json has no '{key}' field"),
            )),
        }
    };
    let flag = |key: &str, default: bool| -> bool {
        root.get(key).and_then(Value::as_bool).unwrap_or(default)
    };

    let slug = text("slug")?;
    // The slug names files (`<slug>.tar`): one from a downloaded backup must not be a path.
    if !is_valid_slug(&slug) {
        return Err(ArchiveError::invalid(
            path,
            format!("backup.json has an unsafe slug {slug:?} (letters, digits, '-' and '_' only)"),
        ));
    }
    let name = text("name")?;
    let date = text("date")?;
    // Core backups carry {"version", "exclude_database"}; the oldest snapshots a bare version
    // string; Supervisor backups without Home Assistant null.
    let (homeassistant_version, database_included) = match root.get("homeassistant") {
        Some(Value::Object(ha)) => (
            ha.get("version")
                .and_then(Value::as_str)
                .map(str::to_string),
            !ha.get("exclude_database")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        Some(Value::String(version)) => (Some(version.clone()), true),
        _ => (None, false),
    };
    let extra = match root.get("extra") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    // Home Assistant's own reader: Core is in the backup when backup.json names its version.
    let homeassistant_included = homeassistant_version.is_some();
    let addons = match root.get("addons") {
        Some(Value::Array(addons)) => addons
            .iter()
            .filter_map(Value::as_object)
            .map(|addon| {
                let field = |key: &str| {
                    Value::from(addon.get(key).and_then(Value::as_str).unwrap_or_default())
                };
                let mut kept = Map::new();
                kept.insert("name".into(), field("name"));
                kept.insert("slug".into(), field("slug"));
                kept.insert("version".into(), field("version"));
                Value::Object(kept)
            })
            .collect(),
        _ => Vec::new(),
    };
    let folders = match root.get("folders") {
        Some(Value::Array(folders)) => folders
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Ok(BackupInfo {
        slug,
        name,
        date,
        size: 0,
        path: None,
        protected: flag("protected", false),
        compressed: flag("compressed", true),
        homeassistant_version,
        database_included,
        sha256: None,
        extra,
        homeassistant_included,
        addons,
        folders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_matches_home_assistant() {
        // hashlib.sha1("2025-01-01T00:00:00+00:00 - test".lower().encode()).hexdigest()[:8]
        assert_eq!(make_slug("2025-01-01T00:00:00+00:00", "Test"), "7e6638e7");
    }

    #[test]
    fn rendered_json_has_home_assistant_key_order() {
        let mut extra = Map::new();
        extra.insert("custom".into(), Value::from(1));
        let json = render_backup_json(&NewBackupJson {
            date: "2025-01-01T00:00:00+00:00",
            name: "Test",
            slug: "1c1a3a12",
            extra: &backup_extra("abc", &extra),
            exclude_database: false,
            ha_version: "2025.4.4",
            protected: false,
        });
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"compressed":true,"date":"2025-01-01T00:00:00+00:00","extra":{"instance_id":"abc","with_automatic_settings":false,"custom":1},"homeassistant":{"exclude_database":false,"version":"2025.4.4"},"name":"Test","protected":false,"slug":"1c1a3a12","type":"partial","version":2}"#
        );
    }

    #[test]
    fn reads_supervisor_and_old_layouts() {
        let supervisor = br#"{"slug": "abcd1234", "name": "Full", "date": "2024-01-01T00:00:00+00:00",
            "type": "full", "protected": true, "compressed": true, "addons": [], "folders": ["share"],
            "supervisor_version": "2024.1.0", "homeassistant": {"version": "2024.1.0", "exclude_database": true},
            "extra": {"supervisor.backup_request_date": "2024-01-01T00:00:00+00:00"}}"#;
        let info = parse_backup_json(supervisor, Path::new("x.tar")).unwrap();
        assert!(info.protected);
        assert!(!info.database_included);
        assert_eq!(info.homeassistant_version.as_deref(), Some("2024.1.0"));
        assert_eq!(info.folders, vec!["share".to_string()]);
        assert!(info.homeassistant_included);
        let meta = sync_metadata(&info);
        assert_eq!(meta["folders"], serde_json::json!(["share"]));
        assert_eq!(meta["homeassistant_included"], Value::Bool(true));
        assert!(meta.get("sha256").is_none());

        let old = br#"{"slug": "0000aaaa", "name": "Old", "date": "2020-01-01", "homeassistant": "0.110.0"}"#;
        let info = parse_backup_json(old, Path::new("x.tar")).unwrap();
        assert_eq!(info.homeassistant_version.as_deref(), Some("0.110.0"));

        let err = parse_backup_json(br#"{"name": "x"}"#, Path::new("x.tar")).unwrap_err();
        assert!(err.to_string().contains("'slug'"), "{err}");

        for slug in ["../../escaped", "/abs", "", "a/b", "a b"] {
            let json = format!(r#"{{"slug": "{slug}", "name": "x", "date": "d"}}"#);
            let err = parse_backup_json(json.as_bytes(), Path::new("x.tar")).unwrap_err();
            assert!(err.to_string().contains("unsafe slug"), "{slug}: {err}");
        }
    }
}
