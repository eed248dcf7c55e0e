//! CPU time per request: the user + system time of a server's processes, read from
//! `/proc/PID/stat` before and after each measured run (a process's figure covers all its
//! threads; a server that forks workers, like nginx, is metered as its whole process group).

use std::sync::OnceLock;
use std::time::Duration;

/// Which processes a run's CPU time is read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Meter {
    /// Not metered (a server that is not our child, or no server at all).
    #[default]
    Off,
    /// One process (all its threads).
    Process(u32),
    /// Every process in the process group this pid leads (master and workers).
    Group(u32),
}

/// The fields of one `/proc/PID/stat` line the suite uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) pgrp: u32,
    /// `utime` + `stime`, in clock ticks.
    pub(crate) ticks: u64,
}

/// Parses a `/proc/PID/stat` line. The command name is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the *last* `)`: state, ppid, pgrp, …,
/// utime (the 14th field of the line) and stime (the 15th).
pub(crate) fn parse_stat(line: &str) -> Option<ProcStat> {
    let (_, rest) = line.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(ProcStat {
        pgrp: u32::try_from(num(2)?).ok()?,
        ticks: num(11)?.checked_add(num(12)?)?,
    })
}

fn stat_of(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every pid whose process group is `leader` (the leader included).
pub(crate) fn group_members(leader: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat_of(*pid).is_some_and(|s| s.pgrp == leader))
        .collect()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux the suite runs on).
fn ticks_per_second() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        crate::report::sh("getconf", &["CLK_TCK"])
            .parse()
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// `ticks` clock ticks as a duration.
pub(crate) fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_micros(ticks.saturating_mul(1_000_000) / per_second.max(1))
}

impl Meter {
    /// CPU time (user + system) used so far; `None` when not metered or the process is gone.
    pub(crate) fn read(self) -> Option<Duration> {
        let ticks = match self {
            Meter::Off => return None,
            Meter::Process(pid) => stat_of(pid)?.ticks,
            Meter::Group(leader) => {
                let members = group_members(leader);
                if members.is_empty() {
                    return None;
                }
                members
                    .iter()
                    .filter_map(|p| stat_of(*p))
                    .map(|s| s.ticks)
                    .sum()
            }
        };
        Some(ticks_to_duration(ticks, ticks_per_second()))
    }
}

/// CPU used between two readings (a group member that exited in between can make the sum
/// shrink: that counts as none rather than negative).
pub(crate) fn used(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    Some(after?.saturating_sub(before?))
}

/// Microseconds of CPU per request, when both are known.
pub(crate) fn per_request_us(cpu: Option<Duration>, requests: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    cpu.filter(|_| requests > 0)
        .map(|c| c.as_secs_f64() * 1e6 / requests as f64)
}

/// Sums two optional CPU figures (a run that was not metered adds nothing).
pub(crate) fn add(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as nginx's workers have.
        let line = "4242 (nginx: worker (x)) S 4240 4240 4240 0 -1 4194624 1450 0 0 0 \
                    731 269 0 0 20 0 1 0 5812 11374592 1106 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pgrp: 4240,
                ticks: 1000
            })
        );
        assert_eq!(parse_stat("12 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn this_process_reads_as_a_process_and_as_a_group() {
        let me = std::process::id();
        assert!(Meter::Process(me).read().is_some());
        assert_eq!(Meter::Off.read(), None);
        let group = stat_of(me).map(|s| s.pgrp);
        assert!(group.is_some_and(|g| group_members(g).contains(&me)));
        assert!(group.is_some_and(|g| Meter::Group(g).read().is_some()));
    }

    #[test]
    fn per_request_arithmetic() {
        assert_eq!(ticks_to_duration(150, 100), Duration::from_millis(1500));
        let s = |ms| Some(Duration::from_millis(ms));
        assert_eq!(used(s(100), s(350)), s(250));
        assert_eq!(used(s(350), s(100)), s(0));
        assert_eq!(used(None, s(100)), None);
        assert_eq!(per_request_us(s(250), 1000), Some(250.0));
        assert_eq!(per_request_us(s(250), 0), None);
        assert_eq!(add(s(1), s(2)), s(3));
        assert_eq!(add(None, s(2)), s(2));
        assert_eq!(add(None, None), None);
    }
}
