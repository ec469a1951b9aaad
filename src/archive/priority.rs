//! Lowers the scheduling priority of our worker threads.
//!
//! On Linux `setpriority(PRIO_PROCESS, tid)` changes a single thread, so the compression workers
//! yield to the asyncio loop thread and the loop's timers fire on time even with every core busy.

#[cfg(target_os = "linux")]
pub fn lower_current_thread(nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: plain syscalls on the calling thread with no pointers involved.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // Failure only means the thread keeps its priority.
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn lower_current_thread(_nice: i32) {}
