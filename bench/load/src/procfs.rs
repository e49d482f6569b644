//! The server's own accounting from /proc: CPU time and memory.

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a process in seconds (all its threads, living or gone).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_cpu(&text).ok_or_else(|| format!("{path}: unexpected format"))
}

/// Fields 14 and 15 (utime, stime), counted after the `(comm)` field, which
/// may itself contain spaces and parentheses.
pub fn parse_stat_cpu(text: &str) -> Option<f64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// Nanoseconds on CPU of each living thread (/proc/PID/task/TID/schedstat):
/// finer than the 10 ms ticks of /proc/PID/stat, but threads that exit
/// take their time with them.
pub fn thread_cpu_ns(pid: u32) -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let ns = std::fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        if let Some(ns) = ns {
            out.insert(tid, ns);
        }
    }
    out
}

/// CPU seconds between two `thread_cpu_ns` readings, threads born in between
/// counted from zero.
pub fn thread_cpu_delta(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, &a)| a.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

/// The whole machine's CPU seconds from /proc/stat's `cpu` line: busy
/// (user, nice, system, irq, softirq) and steal (taken by the hypervisor
/// for other guests). Busy minus the server's and the client's own time is
/// what everything else on the machine used: the noise of a shared box.
pub fn machine_cpu() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_cpu(text.lines().next()?)
}

pub fn parse_machine_cpu(line: &str) -> Option<(f64, f64)> {
    let f: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is in user)
    let (user, nice, system, irq, softirq) = (f[0], f[1], f[2], *f.get(5)?, *f.get(6)?);
    let steal = f.get(7).copied().unwrap_or(0);
    let busy = user + nice + system + irq + softirq;
    Some((busy as f64 / TICKS_PER_SEC, steal as f64 / TICKS_PER_SEC))
}

/// (VmRSS, VmHWM) in KiB from /proc/PID/status.
pub fn memory_kib(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Threads of a process right now.
pub fn threads(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let line = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat_cpu(line), Some(3.25));
    }

    #[test]
    fn machine_line_of_proc_stat() {
        let line = "cpu  449805 50873 68952 67333 1957 0 13231 11724 0 0";
        let (busy, steal) = parse_machine_cpu(line).unwrap();
        assert_eq!(busy, (449805 + 50873 + 68952 + 13231) as f64 / 100.0);
        assert_eq!(steal, 117.24);
        assert!(parse_machine_cpu("cpu0 1 2 3 4 5 6 7 8").is_none());
        assert!(machine_cpu().is_some());
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        let (rss, hwm) = memory_kib(pid).unwrap();
        assert!(rss > 0 && hwm >= rss);
        assert!(threads(pid) >= 1);
        let before = thread_cpu_ns(pid);
        assert!(!before.is_empty());
        let t = std::time::Instant::now();
        while t.elapsed().as_millis() < 30 {
            std::hint::black_box(0u64);
        }
        let spent = thread_cpu_delta(&before, &thread_cpu_ns(pid));
        assert!(
            (0.01..1.0).contains(&spent),
            "busy 30 ms, counted {spent} s"
        );
        assert!(open_files_limit().unwrap() > 0);
    }
}
