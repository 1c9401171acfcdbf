//! Running a child and measuring it from outside: its exit status, wall time and peak
//! resident set size (`ru_maxrss` of `wait4(2)`, which the kernel keeps for exactly that
//! process; reading `VmHWM` from `/proc/<pid>/status` before it exits would be a race).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// What [`run_measured`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// How the child ended.
    pub status: ExitStatus,
    /// Spawn to exit.
    pub wall: Duration,
    /// Peak resident set size of the child, KiB (`ru_maxrss`).
    pub peak_rss_kib: u64,
}

/// Spawns `cmd`, waits for it with `wait4(2)` and returns its status, wall time and peak RSS.
/// Give the command files (or null) for its output: nobody reads pipes while it runs.
pub fn run_measured(cmd: &mut Command) -> io::Result<Measured> {
    let started = Instant::now();
    let child = cmd.spawn()?;
    let pid =
        libc::pid_t::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    let (raw, maxrss) = wait4(pid)?;
    // The child is reaped; `Child`'s drop neither waits nor kills.
    drop(child);
    Ok(Measured {
        status: ExitStatus::from_raw(raw),
        wall: started.elapsed(),
        peak_rss_kib: u64::try_from(maxrss).unwrap_or(0),
    })
}

#[allow(unsafe_code)]
fn wait4(pid: libc::pid_t) -> io::Result<(i32, libc::c_long)> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: an all-zero `rusage` is a valid value of that plain C struct; both pointers
        // are to live locals for the duration of the call, which only writes through them.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage.ru_maxrss));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_that_allocates() {
        let m = run_measured(Command::new("sh").args(["-c", "exit 3"])).expect("sh");
        assert_eq!(m.status.code(), Some(3));
        assert!(m.peak_rss_kib > 0 && m.peak_rss_kib < 64 * 1024, "{m:?}");
        // awk (every Debian has mawk) doubling a string to 128 MiB.
        let m = run_measured(Command::new("awk").arg(
            "BEGIN { s = \"x\"; for (i = 0; i < 27; i++) s = s s; exit length(s) == 134217728 ? 0 : 1 }",
        ))
        .expect("awk");
        assert!(m.status.success(), "{m:?}");
        assert!(m.peak_rss_kib > 128 * 1024, "{m:?}");
    }
}
