//! Puts the engine's own threads in the background without letting a busy machine starve them.
//!
//! Linux schedules threads individually, and an unprivileged thread can only ever lower its own
//! priority: with `RLIMIT_NICE` at 0 (the usual setting) it can neither leave `SCHED_IDLE` nor
//! take back a nice value. So a backup cannot start at idle priority and rise once the machine
//! gets busy; it has to start where it can always finish. The default (`background`) is a fair
//! share of the CPU at the process's own nice value, as `SCHED_BATCH` with the longest time
//! slice the kernel accepts (100 ms). On an EEVDF kernel (Linux 6.6+; custom slices from 6.12) a
//! waking thread with a shorter slice, such as the asyncio loop at the default one, preempts a
//! thread with a longer slice at once, and a batch thread never preempts anyone when it wakes:
//! the loop should keep its timing while the backup keeps its share of a saturated machine
//! (`benches/priority_under_load.py` measures both).
//! `SCHED_IDLE` (the former default, still `idle`) runs only on otherwise idle cores, so any
//! busy process starved the backup. Only threads the engine spawned for one job are changed:
//! the job's threads inherit the setting from the thread [`run_in_background`] starts.

/// How the engine's threads share the CPU, from `HABACKUP_PRIORITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `background` (the default): `SCHED_BATCH` with 100 ms slices, nice unchanged.
    Background,
    /// `idle`: `SCHED_IDLE`; runs only on otherwise idle cores, so a busy machine starves it.
    Idle,
    /// `low`: nice 19; a busy machine leaves it about 1.5 % of a core.
    Low,
    /// `normal`: unchanged, like any thread of the process.
    Normal,
}

/// The longest slice Linux accepts (`sched_setattr` clamps `sched_runtime` to 0.1-100 ms).
#[cfg(target_os = "linux")]
const BACKGROUND_SLICE_NS: u64 = 100_000_000;

impl Priority {
    pub fn from_env() -> Self {
        Self::parse(std::env::var("HABACKUP_PRIORITY").ok().as_deref())
    }

    fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some("background") | Some("") | None => Priority::Background,
            Some("idle") => Priority::Idle,
            Some("low") => Priority::Low,
            Some("normal") => Priority::Normal,
            Some(other) => {
                log::warn!(
                    target: "habackup",
                    "HABACKUP_PRIORITY={:?} is not background, idle, low or normal; using background",
                    crate::common::text::escape(other)
                );
                Priority::Background
            }
        }
    }
}

/// Applies `priority` to the calling thread. Best effort: a kernel or sandbox that refuses a
/// setting leaves the next best one (a batch thread without a custom slice, or nice 19).
#[cfg(target_os = "linux")]
pub fn apply_to_current_thread(priority: Priority) {
    match priority {
        Priority::Normal => {}
        Priority::Background => {
            if sys::set_policy_with_slice(libc::SCHED_BATCH, BACKGROUND_SLICE_NS).is_err() {
                // Before Linux 3.14 (no sched_setattr), or filtered by seccomp.
                let _ = sys::set_scheduler(libc::SCHED_BATCH);
            }
        }
        Priority::Low => sys::set_nice(19),
        Priority::Idle => {
            if sys::set_scheduler(libc::SCHED_IDLE).is_err() {
                sys::set_nice(19);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn apply_to_current_thread(_priority: Priority) {}

/// Applies `HABACKUP_PRIORITY` to the calling thread.
pub fn background_current_thread() {
    apply_to_current_thread(Priority::from_env());
}

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

/// Raw syscalls on the calling thread: musl's `sched_setscheduler` is a stub that returns
/// `ENOSYS`, and neither libc wraps `sched_setattr`.
#[cfg(target_os = "linux")]
mod sys {
    use std::io;

    /// Switches the calling thread to `policy` with a `slice_ns` time slice, keeping its nice
    /// value (lowering it again would need privileges).
    pub fn set_policy_with_slice(policy: libc::c_int, slice_ns: u64) -> io::Result<()> {
        let mut attr = get_attr()?;
        attr.sched_policy = policy as u32;
        attr.sched_flags = 0;
        attr.sched_runtime = slice_ns;
        // SAFETY: pid 0 is the calling thread; `attr` outlives the call.
        check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) })
    }

    pub fn set_scheduler(policy: libc::c_int) -> io::Result<()> {
        // musl's `sched_param` has more fields than glibc's, hence zeroed rather than a literal.
        // SAFETY: zeroed is a valid `sched_param` (plain integers, priority 0); pid 0 is the
        // calling thread; `param` outlives the call.
        let param: libc::sched_param = unsafe { std::mem::zeroed() };
        check(unsafe { libc::syscall(libc::SYS_sched_setscheduler, 0, policy, &param as *const _) })
    }

    pub fn set_nice(nice: i32) {
        // SAFETY: plain syscalls on the calling thread.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, nice);
        }
    }

    /// The calling thread's scheduling attributes.
    pub fn get_attr() -> io::Result<libc::sched_attr> {
        // SAFETY: zeroed is a valid `sched_attr` (plain integers); pid 0 is the calling thread
        // and the kernel writes at most `size` bytes into `attr`.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        check(unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut _, size, 0) })?;
        Ok(attr)
    }

    fn check(ret: libc::c_long) -> io::Result<()> {
        if ret == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Priority;

    #[test]
    fn parses_the_setting() {
        assert_eq!(Priority::parse(None), Priority::Background);
        assert_eq!(Priority::parse(Some("")), Priority::Background);
        assert_eq!(Priority::parse(Some("background")), Priority::Background);
        assert_eq!(Priority::parse(Some("idle")), Priority::Idle);
        assert_eq!(Priority::parse(Some("low")), Priority::Low);
        assert_eq!(Priority::parse(Some(" normal ")), Priority::Normal);
        assert_eq!(Priority::parse(Some("bogus")), Priority::Background);
    }

    /// The calling thread's (policy, nice value, slice).
    #[cfg(target_os = "linux")]
    fn current() -> (u32, i32, u64) {
        let attr = super::sys::get_attr().unwrap();
        (attr.sched_policy, attr.sched_nice, attr.sched_runtime)
    }

    #[cfg(target_os = "linux")]
    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>());
        let found = (
            numbers.next().unwrap().unwrap(),
            numbers.next().unwrap().unwrap(),
        );
        found >= (major, minor)
    }

    /// Runs `check` on a fresh thread with `priority` applied (a thread cannot take it back).
    #[cfg(target_os = "linux")]
    fn on_thread_with<T: Send>(priority: Priority, check: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    super::apply_to_current_thread(priority);
                    check()
                })
                .join()
                .unwrap()
        })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn background_is_a_batch_thread_with_long_slices_at_the_same_nice_and_threads_inherit_it() {
        let before = current();
        let (own, child) = on_thread_with(Priority::Background, || {
            (current(), std::thread::spawn(current).join().unwrap())
        });
        assert_eq!(own.0, libc::SCHED_BATCH as u32);
        assert_eq!(own.1, before.1);
        // Custom slices arrived in Linux 6.12; older kernels keep their own.
        if kernel_at_least(6, 12) {
            assert_eq!(own.2, super::BACKGROUND_SLICE_NS);
        }
        assert_eq!(child, own);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn idle_low_and_normal_set_what_they_name() {
        let before = current();
        let idle = on_thread_with(Priority::Idle, current);
        assert_eq!(idle.0, libc::SCHED_IDLE as u32);
        let low = on_thread_with(Priority::Low, current);
        assert_eq!((low.0, low.1), (libc::SCHED_OTHER as u32, 19));
        assert_eq!(on_thread_with(Priority::Normal, current), before);
    }
}
