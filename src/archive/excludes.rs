//! Home Assistant's exclude patterns (and the same syntax for extract's `--include`).
//!
//! Home Assistant matches each pattern as `PurePath("data/<path>").full_match("data/<pattern>")`:
//! anchored at the top of the config dir, `*`, `?` and `[...]` stay inside one path segment, and a
//! `**` segment spans any number of segments (zero included).

use std::sync::atomic::{AtomicBool, Ordering};

use super::ArchiveError;

/// The patterns Home Assistant leaves out of every backup.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "**/__pycache__/*",
    "**/.DS_Store",
    ".HA_RESTORE",
    "*.db-shm",
    "*.log.*",
    "*.log",
    "backups/*.tar",
    "tmp_backups/*.tar",
    "OZW_Log.txt",
    "tts/*",
    ".cache/*",
];

/// Home Assistant's recorder database: left out of a backup made without it, and kept as it is
/// by a restore that does not restore it.
pub const DATABASE_FILES: &[&str] = &[
    "home-assistant_v2.db",
    "home-assistant_v2.db-wal",
    "home-assistant_v2.db-shm",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole segments.
    AnySegments,
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// One compiled exclude pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    segments: Vec<Segment>,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Self, ArchiveError> {
        Self::parse("exclude", pattern)
    }

    /// `kind` ("exclude", "include") names the pattern in the error.
    pub fn parse(kind: &str, pattern: &str) -> Result<Self, ArchiveError> {
        let trimmed = pattern.trim_start_matches("./");
        if trimmed.is_empty() || trimmed.starts_with('/') {
            return Err(ArchiveError::InvalidArgument(format!(
                "{kind} pattern {pattern:?} must be a non-empty path relative to the config dir"
            )));
        }
        let segments = trimmed
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(|s| {
                if s == "**" {
                    Segment::AnySegments
                } else {
                    Segment::Glob(compile_segment(s))
                }
            })
            .collect();
        Ok(Pattern {
            source: pattern.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `relative` is the path inside the config dir, `/`-separated, without a leading `data/`.
    pub fn matches(&self, relative: &str) -> bool {
        let parts: Vec<&str> = relative.split('/').filter(|s| !s.is_empty()).collect();
        match_segments(&self.segments, &parts)
    }
}

fn compile_segment(segment: &str) -> Vec<Token> {
    let chars: Vec<char> = segment.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if tokens.last() != Some(&Token::AnyRun) {
                    tokens.push(Token::AnyRun);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                i += 1;
            }
            '[' => match compile_class(&chars[i + 1..]) {
                Some((token, used)) => {
                    tokens.push(token);
                    i += 1 + used;
                }
                // fnmatch treats an unclosed `[` as a literal.
                None => {
                    tokens.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    tokens
}

/// Parses the inside of `[...]`; returns the token and how many chars it used, `]` included.
fn compile_class(rest: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(rest.first(), Some('!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < rest.len() {
        let c = rest[i];
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if i + 2 < rest.len() && rest[i + 1] == '-' && rest[i + 2] != ']' {
            ranges.push((c, rest[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

fn match_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((Segment::AnySegments, rest)) => {
            (0..=parts.len()).any(|skip| match_segments(rest, &parts[skip..]))
        }
        Some((Segment::Glob(tokens), rest)) => match parts.split_first() {
            Some((part, remaining)) => {
                let chars: Vec<char> = part.chars().collect();
                match_tokens(tokens, &chars) && match_segments(rest, remaining)
            }
            None => false,
        },
    }
}

fn match_tokens(tokens: &[Token], chars: &[char]) -> bool {
    match tokens.split_first() {
        None => chars.is_empty(),
        Some((Token::AnyRun, rest)) => (0..=chars.len()).any(|n| match_tokens(rest, &chars[n..])),
        Some((token, rest)) => match chars.split_first() {
            Some((c, remaining)) => token_matches(token, *c) && match_tokens(rest, remaining),
            None => false,
        },
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => true,
        Token::AnyRun => true,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
    }
}

/// The compiled set of patterns for one backup. It notes which patterns matched something, so
/// that a caller's pattern that matched nothing (a typo, `*.png` meant for every folder) can be
/// pointed out.
#[derive(Debug, Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
    /// Per pattern: whether it is the caller's own (not one of Home Assistant's defaults, nor a
    /// database file added for `include_database=False`).
    custom: Vec<bool>,
    matched: Vec<AtomicBool>,
}

impl Clone for Excludes {
    fn clone(&self) -> Self {
        Excludes {
            patterns: self.patterns.clone(),
            custom: self.custom.clone(),
            matched: self
                .matched
                .iter()
                .map(|m| AtomicBool::new(m.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

impl Excludes {
    pub fn new<S: AsRef<str>>(
        patterns: &[S],
        include_database: bool,
    ) -> Result<Self, ArchiveError> {
        let mut compiled = patterns
            .iter()
            .map(|p| Pattern::new(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut custom: Vec<bool> = patterns
            .iter()
            .map(|p| !DEFAULT_EXCLUDES.contains(&p.as_ref()))
            .collect();
        if !include_database {
            for p in DATABASE_FILES {
                compiled.push(Pattern::new(p)?);
                custom.push(false);
            }
        }
        Ok(Excludes {
            matched: compiled.iter().map(|_| AtomicBool::new(false)).collect(),
            patterns: compiled,
            custom,
        })
    }

    pub fn defaults(include_database: bool) -> Self {
        // The built-in patterns are known to compile.
        Self::new(DEFAULT_EXCLUDES, include_database).unwrap_or_default()
    }

    /// Whether `relative` is left out. Every pattern is tried, not just up to the first match,
    /// so that each one's "matched something" is known.
    pub fn is_excluded(&self, relative: &str) -> bool {
        let mut excluded = false;
        for (pattern, matched) in self.patterns.iter().zip(&self.matched) {
            if pattern.matches(relative) {
                matched.store(true, Ordering::Relaxed);
                excluded = true;
            }
        }
        excluded
    }

    /// The caller's own patterns that matched nothing so far.
    pub fn unmatched_custom(&self) -> Vec<&str> {
        self.patterns
            .iter()
            .zip(&self.custom)
            .zip(&self.matched)
            .filter(|((_, custom), matched)| **custom && !matched.load(Ordering::Relaxed))
            .map(|((pattern, _), _)| pattern.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(path: &str) -> bool {
        Excludes::defaults(true).is_excluded(path)
    }

    #[test]
    fn home_assistant_default_cases() {
        let cases = [
            ("configuration.yaml", false),
            ("home-assistant.log", true),
            ("home-assistant.log.1", true),
            ("home-assistant.log.fault", true),
            ("sub/home-assistant.log", false),
            ("home-assistant_v2.db", false),
            ("home-assistant_v2.db-shm", true),
            ("backups", false),
            ("backups/old.tar", true),
            ("backups/notes.txt", false),
            ("another_subdir/backups/x.tar", false),
            ("tts", false),
            ("tts/hello.mp3", true),
            ("another_subdir/tts/y.mp3", false),
            (".cache", false),
            (".cache/x", true),
            ("__pycache__/a.pyc", true),
            ("custom_components/x/__pycache__/a.pyc", true),
            ("custom_components/x/__pycache__", false),
            (".DS_Store", true),
            ("www/.DS_Store", true),
            ("OZW_Log.txt", true),
            ("zwave/OZW_Log.txt", false),
            (".HA_RESTORE", true),
            ("tmp_backups/a.tar", true),
        ];
        for (path, want) in cases {
            assert_eq!(excluded(path), want, "{path}");
        }
    }

    #[test]
    fn database_excludes() {
        let ex = Excludes::defaults(false);
        assert!(ex.is_excluded("home-assistant_v2.db"));
        assert!(ex.is_excluded("home-assistant_v2.db-wal"));
        assert!(!ex.is_excluded("sub/home-assistant_v2.db"));
    }

    #[test]
    fn glob_features() {
        let p = Pattern::new("a?c/[!x]*.y[a-c]ml").unwrap();
        assert!(p.matches("abc/d.yaml"));
        assert!(!p.matches("abc/x.yaml"));
        assert!(!p.matches("abbc/d.yaml"));
        assert!(Pattern::new("**").unwrap().matches("a/b/c"));
        assert!(Pattern::new("a/**/z").unwrap().matches("a/z"));
        assert!(Pattern::new("a/**/z").unwrap().matches("a/b/c/z"));
        assert!(!Pattern::new("a/**/z").unwrap().matches("a/b/c/zz"));
        assert!(Pattern::new("[ab").unwrap().matches("[ab"));
    }

    #[test]
    fn the_callers_patterns_that_matched_nothing_are_known() {
        let ex = Excludes::new(&["*.log", "*.png", "www/**/*.png"], false).unwrap();
        assert!(ex.is_excluded("home-assistant.log"));
        assert!(ex.is_excluded("www/a/logo.png"));
        assert!(!ex.is_excluded("www/logo.jpg"));
        // "*.log" is one of Home Assistant's defaults, the database files are not the caller's.
        assert_eq!(ex.unmatched_custom(), vec!["*.png"]);
    }

    #[test]
    fn rejects_absolute_or_empty_patterns() {
        assert!(Pattern::new("/etc/*").is_err());
        assert!(Pattern::new("").is_err());
    }
}
