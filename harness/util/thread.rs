//! Threads: how many cores, and scheduling hints.

/// The cores this process may run on (1 when the system does not say): one spelling for every
/// "a thread or a connection per core".
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Lower the calling thread's scheduling priority by `niceness` (Linux: a thread's own nice
/// value; elsewhere nothing). For helper threads that feed one busier thread: when the cores
/// are all taken, the busier thread runs first and the helpers fill the gaps. Best effort: a
/// refusal leaves the priority as it was.
pub fn lower_priority(niceness: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own thread id changes only
        // this thread's nice value, and its result is only a hint we may ignore.
        unsafe {
            let tid = libc::gettid();
            let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
                (now + niceness).min(19),
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = niceness;
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowers_only_the_calling_thread() {
        #[cfg(target_os = "linux")]
        {
            let own =
                || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            let before = own();
            let inside = std::thread::spawn(move || {
                super::lower_priority(5);
                own()
            })
            .join()
            .unwrap();
            assert_eq!(inside, (before + 5).min(19));
            assert_eq!(own(), before, "the calling thread only");
        }
    }
}
