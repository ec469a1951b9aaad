//! How transfers are cut up, retried and timed: habackup's own options of every store
//! (`part_size`, `max_retries`, ...), taken out of the options before a store's builder sees them.

use std::time::Duration;

use object_store::{BackoffConfig, RetryConfig};

use super::error::StoreError;

pub const MIB: u64 = 1024 * 1024;
pub const MAX_SINGLE_PUT: u64 = 64 * MIB;
/// S3 and GCS refuse multipart parts below 5 MiB (the last one excepted).
pub const MIN_CLOUD_PART: usize = 5 * MIB as usize;

/// How transfers are cut up and retried; options override these by key.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Files above this go up as multipart uploads; smaller ones in one request.
    pub multipart_threshold: u64,
    /// S3 wants parts of at least 5 MiB (the last excepted).
    pub part_size: usize,
    /// Parts in flight at once; memory held is about `part_size * (max_concurrency + 1)`.
    pub max_concurrency: usize,
    pub retry: RetryConfig,
    pub connect_timeout: Duration,
    /// Per request: one part, not a whole backup, has to fit in it.
    pub timeout: Duration,
    /// Bytes per second for all uploads / downloads of the agent together; `None`: no limit.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB as usize,
            max_concurrency: 4,
            // object_store's default (10 retries within 3 minutes) makes a dead server look
            // like a hang; a few quick retries ride out a blip and still fail fast.
            retry: RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(120),
            },
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
            limit_upload: None,
            limit_download: None,
        }
    }
}

pub fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidConfig(message.into())
}

fn parse_size(key: &str, value: &str) -> Result<u64, StoreError> {
    let value = value.trim();
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a size")))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => MIB,
        "g" | "gib" | "gb" => 1024 * MIB,
        _ => return Err(invalid(format!("option {key}: {value:?} is not a size"))),
    };
    Ok(number * factor)
}

/// A rate in bytes per second (`500KiB`, `2MiB/s`); `0` or `none` for no limit.
fn parse_rate(key: &str, value: &str) -> Result<Option<u64>, StoreError> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let per_second = trimmed.strip_suffix("/s").unwrap_or(trimmed);
    let rate = parse_size(key, per_second)?;
    if rate > 0 && rate < 1024 {
        return Err(invalid(format!(
            "option {key}: {value:?} is below 1 KiB/s (the unit is bytes per second)"
        )));
    }
    Ok((rate > 0).then_some(rate))
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, StoreError> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a duration")))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" | "" => number,
        "m" | "min" => number * 60.0,
        _ => {
            return Err(invalid(format!(
                "option {key}: {value:?} is not a duration"
            )))
        }
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a duration")))
}

fn parse_count(key: &str, value: &str) -> Result<usize, StoreError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a whole number")))
}

/// Takes habackup's own keys out of `options` and returns the rest, for the store's builder.
pub fn take_tuning(
    options: &[(String, String)],
) -> Result<(Tuning, Vec<(String, String)>), StoreError> {
    let mut tuning = Tuning::default();
    let mut rest = Vec::new();
    for (key, value) in options {
        match key.to_ascii_lowercase().as_str() {
            "multipart_threshold" => {
                // Below the threshold a backup is sent from memory in one request.
                tuning.multipart_threshold = parse_size(key, value)?;
                if tuning.multipart_threshold > MAX_SINGLE_PUT {
                    return Err(invalid(format!(
                        "option multipart_threshold: {value:?} is above 64 MiB (the most a \
                         single request holds in memory)"
                    )));
                }
            }
            "part_size" => {
                let size = parse_size(key, value)?;
                if !(MIB..=5 * 1024 * MIB).contains(&size) {
                    return Err(invalid(format!(
                        "option part_size: {value:?} must be between 1 MiB and 5 GiB"
                    )));
                }
                tuning.part_size = size as usize;
            }
            "max_concurrency" => {
                tuning.max_concurrency = parse_count(key, value)?;
                if tuning.max_concurrency == 0 {
                    return Err(invalid("option max_concurrency must be at least 1"));
                }
            }
            "max_retries" => tuning.retry.max_retries = parse_count(key, value)?,
            "retry_timeout" => tuning.retry.retry_timeout = parse_duration(key, value)?,
            "retry_backoff" => tuning.retry.backoff.init_backoff = parse_duration(key, value)?,
            "timeout" => tuning.timeout = parse_duration(key, value)?,
            "connect_timeout" => tuning.connect_timeout = parse_duration(key, value)?,
            "limit_upload" => tuning.limit_upload = parse_rate(key, value)?,
            "limit_download" => tuning.limit_download = parse_rate(key, value)?,
            _ => rest.push((key.clone(), value.clone())),
        }
    }
    Ok((tuning, rest))
}

pub const TUNING_KEYS: &str = "multipart_threshold, part_size, max_concurrency, max_retries, \
                           retry_timeout, retry_backoff, timeout, connect_timeout, limit_upload, \
                           limit_download";
