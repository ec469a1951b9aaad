//! Bandwidth limits: a token bucket every transfer of an agent draws from, so the average rate
//! over all parts in flight stays at the limit, with at most a quarter second's worth of burst.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Credit a quiet spell may build up: enough to keep a link busy, not enough to flood it.
const BURST: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: f64,
    /// When the bytes taken so far will have gone out at the limit.
    next_free: Mutex<Instant>,
}

impl Throttle {
    pub fn new(bytes_per_second: u64) -> Throttle {
        Throttle {
            bytes_per_second: bytes_per_second.max(1) as f64,
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `bytes` more may go at the limit.
    pub async fn take(&self, bytes: usize) {
        let wait = {
            let mut next_free = self
                .next_free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let start = (*next_free).max(now.checked_sub(BURST).unwrap_or(now));
            *next_free = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
            next_free.saturating_duration_since(now + BURST)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Draws from `throttle` when there is one.
pub async fn take(throttle: Option<&Throttle>, bytes: usize) {
    if let Some(throttle) = throttle {
        throttle.take(bytes).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_rate_holds() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let throttle = Throttle::new(4 * 1024 * 1024);
        let started = Instant::now();
        runtime.block_on(async {
            for _ in 0..16 {
                throttle.take(256 * 1024).await;
            }
        });
        // 4 MiB at 4 MiB/s: a second, less the burst allowance.
        let took = started.elapsed().as_secs_f64();
        assert!((0.7..1.3).contains(&took), "{took}");
    }
}
