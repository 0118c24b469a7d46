//! Reading /proc: peak and current RSS of a process, and CPU time (ours, the services', the
//! stack's), so the report can say where the time went.

use std::collections::HashMap;

/// (VmHWM, VmRSS) in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// CPU seconds of every live process whose command name is `comm`, by pid.
pub fn cpu_by_comm(comm: &str) -> HashMap<u32, f64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(c) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else { continue };
        if c.trim() == comm {
            if let Some(s) = cpu_seconds(pid) {
                out.insert(pid, s);
            }
        }
    }
    out
}

/// (busy, total) machine CPU seconds since boot, from /proc/stat.
pub fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / clock_ticks(), total / clock_ticks())
}

/// Pids of the stack (from `$VTAG_HOME/pids/<name>.pid`), read-only.
pub fn stack_pid(vtag_home: &str, name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("{vtag_home}/pids/{name}.pid")).ok()?.lines().next()?.trim().parse().ok()
}

/// A point-in-time CPU snapshot of the processes that matter.
#[derive(Clone, Debug, Default)]
pub struct CpuSnapshot {
    pub at: Option<std::time::Instant>,
    pub named: Vec<(String, f64)>,
    pub postgres: HashMap<u32, f64>,
    pub machine_busy: f64,
}

pub struct Watched {
    pub names: Vec<(String, u32)>,
}

impl Watched {
    pub fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            at: Some(std::time::Instant::now()),
            named: self.names.iter().map(|(n, p)| (n.clone(), cpu_seconds(*p).unwrap_or(0.0))).collect(),
            postgres: cpu_by_comm("postgres"),
            machine_busy: machine_cpu().0,
        }
    }
}

/// CPU seconds spent between two snapshots, per process name (+ "postgres", "machine", "wall").
pub fn cpu_delta(before: &CpuSnapshot, after: &CpuSnapshot) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (name, a) in &after.named {
        let b = before.named.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v);
        out.push((name.clone(), (a - b).max(0.0)));
    }
    let pg: f64 = after.postgres.iter().map(|(pid, a)| a - before.postgres.get(pid).copied().unwrap_or(0.0)).sum();
    out.push(("postgres".into(), pg.max(0.0)));
    out.push(("machine".into(), after.machine_busy - before.machine_busy));
    if let (Some(a), Some(b)) = (after.at, before.at) {
        out.push(("wall".into(), (a - b).as_secs_f64()));
    }
    out
}
