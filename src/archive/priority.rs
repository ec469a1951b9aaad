//! Puts the engine's own threads in the background.
//!
//! Linux schedules threads individually: the compression and I/O threads of a backup run as
//! `SCHED_IDLE`, so the asyncio loop thread preempts them the moment its timer fires (a lowered
//! nice value alone still left 1-2 ms of wake-up lag with every core busy). When nothing else wants
//! the CPU they get all of it. Only threads the engine spawned for one job are changed, because an
//! unprivileged thread cannot raise its priority again.

/// How the engine's threads yield, from `HABACKUP_PRIORITY`: `idle` (the default, `SCHED_IDLE`),
/// `low` (nice 19: never starved by a busy machine, at the cost of some loop latency) or `normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Idle,
    Low,
    Normal,
}

impl Priority {
    pub fn from_env() -> Self {
        Self::parse(std::env::var("HABACKUP_PRIORITY").ok().as_deref())
    }

    fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some("low") => Priority::Low,
            Some("normal") => Priority::Normal,
            Some("idle") | None => Priority::Idle,
            Some(other) => {
                log::warn!(target: "habackup", "HABACKUP_PRIORITY={other:?} is not idle, low or normal; using idle");
                Priority::Idle
            }
        }
    }
}

#[cfg(target_os = "linux")]
pub fn background_current_thread() {
    let priority = Priority::from_env();
    // SAFETY: plain syscalls on the calling thread; `param` outlives the call.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        match priority {
            Priority::Normal => {}
            Priority::Low => {
                let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 19);
            }
            Priority::Idle => {
                // The system call, not libc's wrapper: musl's is a stub that fails (POSIX means
                // the whole process); Linux's call sets the calling thread (pid 0). musl's
                // `sched_param` has more fields, hence zeroed rather than a literal.
                let param: libc::sched_param = std::mem::zeroed();
                let rc = libc::syscall(libc::SYS_sched_setscheduler, 0, libc::SCHED_IDLE, &param);
                if rc != 0 {
                    // Not allowed (seccomp, old kernel): a lower nice value is the next best thing.
                    let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn background_current_thread() {}

/// Runs `work` on a fresh background thread and waits for it.
pub fn run_in_background<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            background_current_thread();
            work()
        });
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Priority;

    #[test]
    fn parses_the_setting() {
        assert_eq!(Priority::parse(None), Priority::Idle);
        assert_eq!(Priority::parse(Some("low")), Priority::Low);
        assert_eq!(Priority::parse(Some(" normal ")), Priority::Normal);
        assert_eq!(Priority::parse(Some("bogus")), Priority::Idle);
    }
}
