//! Puts the engine's own threads in the background without letting a busy machine starve them.
//!
//! Linux schedules threads individually, and an unprivileged thread can only ever lower its own
//! priority (with `RLIMIT_NICE` at 0, the usual setting, it can neither leave `SCHED_IDLE` nor
//! take back a nice value), so a backup cannot start low and rise when the machine gets busy.
//! The default therefore starts where a backup must finish: a fair share of the CPU (nice 0),
//! as `SCHED_BATCH` with the longest time slice the kernel allows (100 ms). On an EEVDF kernel
//! (Linux 6.6+; custom slices from 6.12) a waking thread with a shorter slice, such as the
//! asyncio loop at the default 3 ms, preempts a thread with a longer one at once, and a batch
//! thread never preempts anyone when it wakes: the loop keeps its timing while the backup keeps
//! its share of a saturated machine. `SCHED_IDLE` (the old default) gave the loop the same
//! timing but made the backup wait for any busy process, which a nightly backup cannot afford.
//! Only threads the engine spawned for one job are changed: the job's threads inherit the
//! setting from the thread [`run_in_background`] starts.

/// How the engine's threads share the CPU, from `HABACKUP_PRIORITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `background` (the default): `SCHED_BATCH`, nice 0, 100 ms slices.
    Background,
    /// `idle`: `SCHED_IDLE`; runs only on otherwise idle cores, so a busy machine starves it.
    Idle,
    /// `low`: nice 19; a busy machine leaves it about 1.5 % of a core.
    Low,
    /// `normal`: unchanged, like any thread of the process.
    Normal,
}

/// The longest slice Linux accepts (`sched_setattr` clamps `sched_runtime` to 0.1-100 ms).
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
            // EXPERIMENT-ONLY (removed before merge): HABACKUP_EXP="policy,nice,slice_ns"
            if let Ok(exp) = std::env::var("HABACKUP_EXP") {
                let v: Vec<i64> = exp.split(',').map(|x| x.trim().parse().unwrap_or(0)).collect();
                if v.len() == 3 {
                    let _ = sys::set_attr(v[0] as libc::c_int, v[1] as i32, v[2] as u64);
                    return;
                }
            }
            if sys::set_attr(libc::SCHED_BATCH, 0, BACKGROUND_SLICE_NS).is_err() {
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

    pub fn set_attr(policy: libc::c_int, nice: i32, slice_ns: u64) -> io::Result<()> {
        // SAFETY: zeroed is a valid `sched_attr` (plain integers).
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
        attr.sched_policy = policy as u32;
        attr.sched_nice = nice;
        attr.sched_runtime = slice_ns;
        // SAFETY: pid 0 is the calling thread; `attr` outlives the call.
        check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) })
    }

    pub fn set_scheduler(policy: libc::c_int) -> io::Result<()> {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` outlives the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_sched_setscheduler,
                0,
                policy,
                &param as *const _,
            )
        })
    }

    pub fn set_nice(nice: i32) {
        // SAFETY: plain syscalls on the calling thread.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, nice);
        }
    }

    /// The calling thread's policy, nice value and slice (0 when the kernel keeps the default).
    #[cfg(test)]
    pub fn get_attr() -> io::Result<(u32, i32, u64)> {
        // SAFETY: as in `set_attr`; the kernel writes at most `size` bytes.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        check(unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut _, size, 0) })?;
        Ok((attr.sched_policy, attr.sched_nice, attr.sched_runtime))
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
    fn background_is_a_batch_thread_at_nice_0_with_long_slices_and_threads_inherit_it() {
        let (own, child) = on_thread_with(Priority::Background, || {
            let own = super::sys::get_attr().unwrap();
            let child = std::thread::spawn(|| super::sys::get_attr().unwrap())
                .join()
                .unwrap();
            (own, child)
        });
        assert_eq!(own.0, libc::SCHED_BATCH as u32);
        assert_eq!(own.1, 0);
        // Kernels before 6.12 have no custom slice and report 0.
        assert!(
            own.2 == super::BACKGROUND_SLICE_NS || own.2 == 0,
            "{own:?}"
        );
        assert_eq!(child, own);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn idle_low_and_normal_set_what_they_name() {
        let idle = on_thread_with(Priority::Idle, || super::sys::get_attr().unwrap());
        assert_eq!(idle.0, libc::SCHED_IDLE as u32);
        let low = on_thread_with(Priority::Low, || super::sys::get_attr().unwrap());
        assert_eq!((low.0, low.1), (libc::SCHED_OTHER as u32, 19));
        let before = super::sys::get_attr().unwrap();
        let normal = on_thread_with(Priority::Normal, || super::sys::get_attr().unwrap());
        assert_eq!(normal, before);
    }
}
