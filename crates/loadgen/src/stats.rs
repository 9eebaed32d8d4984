//! Owns measurement: latency samples per operation, errors by code, and the
//! report (percentiles, throughput) printed as a table and as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Samples collected by one client; merged at the end.
#[derive(Default, Debug)]
pub struct Recorder {
    latencies: BTreeMap<&'static str, Vec<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    /// Records one successful operation of `op` that took `took`.
    pub fn ok(&mut self, op: &'static str, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latencies.entry(op).or_default().push(micros);
    }

    /// Records one failed operation by its error code (GraphQL
    /// `extensions.code`, `HTTP_<status>`, or `TRANSPORT`).
    pub fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_string()).or_default() += 1;
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: Recorder) {
        for (op, mut samples) in other.latencies {
            self.latencies.entry(op).or_default().append(&mut samples);
        }
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }

    /// The report over `elapsed`.
    pub fn report(mut self, elapsed: Duration) -> Vec<OpReport> {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut out = Vec::new();
        for (op, samples) in self.latencies.iter_mut() {
            samples.sort_unstable();
            out.push(OpReport {
                op: op.to_string(),
                count: samples.len() as u64,
                per_second: samples.len() as f64 / secs,
                p50_ms: percentile(samples, 0.50),
                p90_ms: percentile(samples, 0.90),
                p99_ms: percentile(samples, 0.99),
                p999_ms: percentile(samples, 0.999),
                max_ms: samples.last().map(|&m| m as f64 / 1000.0).unwrap_or(0.0),
            });
        }
        out
    }

    /// Errors by code.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.clone()
    }
}

/// Figures for one operation.
#[derive(Debug, Serialize)]
pub struct OpReport {
    pub op: String,
    pub count: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The `p` quantile (nearest rank) of sorted microsecond samples, in ms.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// The whole run's report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub clients: usize,
    pub seconds: f64,
    pub ops: Vec<OpReport>,
    pub errors: BTreeMap<String, u64>,
    pub server_rss_kib: Option<u64>,
    pub notes: Vec<String>,
}

impl Report {
    /// A human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "scenario {} · {} clients · {:.1}s\n{:<22} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            self.scenario,
            self.clients,
            self.seconds,
            "operation",
            "count",
            "per sec",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for op in &self.ops {
            s.push_str(&format!(
                "{:<22} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                op.op,
                op.count,
                op.per_second,
                op.p50_ms,
                op.p90_ms,
                op.p99_ms,
                op.p999_ms,
                op.max_ms
            ));
        }
        if self.errors.is_empty() {
            s.push_str("errors: none\n");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect();
            s.push_str(&format!("errors: {}\n", list.join(", ")));
        }
        match self.server_rss_kib {
            Some(kib) => s.push_str(&format!(
                "server RSS at end: {:.1} MiB\n",
                kib as f64 / 1024.0
            )),
            None => s.push_str("server RSS at end: unknown (pass --server-pid)\n"),
        }
        for note in &self.notes {
            s.push_str(note);
            s.push('\n');
        }
        s
    }
}

/// Resident memory of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&samples, 0.50), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&samples, 0.999), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn merging_keeps_every_sample_and_error() {
        let mut a = Recorder::default();
        a.ok("page", Duration::from_millis(2));
        a.error("CONFLICT");
        let mut b = Recorder::default();
        b.ok("page", Duration::from_millis(4));
        b.error("CONFLICT");
        b.error("INTERNAL");
        a.merge(b);
        let errors = a.errors();
        let report = a.report(Duration::from_secs(2));
        assert_eq!(report[0].count, 2);
        assert_eq!(report[0].per_second, 1.0);
        assert_eq!(report[0].p50_ms, 2.0);
        assert_eq!(report[0].max_ms, 4.0);
        assert_eq!(errors.get("CONFLICT"), Some(&2));
        assert_eq!(errors.get("INTERNAL"), Some(&1));
    }
}
