//! Server RSS and CPU time from `/proc/<pid>`.

/// Clock ticks per second for `/proc/<pid>/stat` (USER_HZ; 100 on every Linux we run on).
const CLK_TCK: f64 = 100.0;

/// `utime + stime` in seconds from the text of `/proc/<pid>/stat`.
pub(crate) fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 overall, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLK_TCK)
}

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
pub(crate) fn parse_status_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds used by `pid` so far (0 when it cannot be read).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_cpu(&s))
        .unwrap_or(0.0)
}

/// Resident set size of `pid` in KiB (0 when it cannot be read).
pub(crate) fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| parse_status_rss_kb(&s))
        .unwrap_or(0)
}

/// Bytes a process has written: `wchar` (handed to `write` and its kin) and `write_bytes`
/// (sent to the block layer), from the text of `/proc/<pid>/io`.
pub(crate) fn parse_io_written(io: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = io.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("wchar:")?, field("write_bytes:")?))
}

/// Summed `(wchar, write_bytes)` of `pids` so far (a process that cannot be read counts 0).
pub(crate) fn written(pids: &[u32]) -> (u64, u64) {
    pids.iter().fold((0, 0), |(w, b), &p| {
        let (pw, pb) = std::fs::read_to_string(format!("/proc/{p}/io"))
            .ok()
            .and_then(|s| parse_io_written(&s))
            .unwrap_or((0, 0));
        (w + pw, b + pb)
    })
}

/// A snapshot of a set of processes: summed CPU seconds and RSS.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    /// Summed `utime + stime`, seconds.
    pub cpu: f64,
    /// Summed RSS, KiB.
    pub rss_kb: u64,
}

/// Samples every pid in `pids`.
pub(crate) fn sample(pids: &[u32]) -> Sample {
    pids.iter().fold(Sample::default(), |acc, &p| Sample {
        cpu: acc.cpu + cpu_secs(p),
        rss_kb: acc.rss_kb + rss_kb(p),
    })
}

/// Samples this process.
pub(crate) fn sample_self() -> Sample {
    sample(&[std::process::id()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let stat =
            "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn status_rss() {
        let status = "Name:\tfootlights\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_status_rss_kb(status), Some(12345));
        assert_eq!(parse_status_rss_kb("Name: x\n"), None);
    }

    #[test]
    fn io_written() {
        let io = "rchar: 10\nwchar: 2048\nsyscr: 1\nsyscw: 2\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io_written(io), Some((2048, 4096)));
        assert_eq!(parse_io_written("rchar: 1\n"), None);
    }

    #[test]
    fn self_sample_is_nonzero() {
        let s = sample_self();
        assert!(s.rss_kb > 0);
    }
}
