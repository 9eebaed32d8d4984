//! Prometheus metrics the server exposes at `/metrics`: request counts by outcome, request
//! latency histograms, and gauges the host fills in (log head, projection positions).
//! Written by hand on atomics: a handful of series does not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    overflow: AtomicU64,
    sum_micros: AtomicU64,
    total: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }
}

/// A gauge source: a name, help text and a function read at scrape time.
type GaugeFn = Box<dyn Fn() -> Vec<(String, f64)> + Send + Sync>;

/// The metrics of one server.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (kind, outcome) → count; kind is query/mutation/subscription/http, outcome a code or "ok".
    requests: Mutex<BTreeMap<(String, String), u64>>,
    latency: Histogram,
    /// Time from handing events to the store to their durable acknowledgement.
    append: Histogram,
    gauges: Mutex<Vec<(String, String, GaugeFn)>>,
}

impl Telemetry {
    /// Counts one request and its latency.
    pub fn record(&self, kind: &str, outcome: &str, latency: Duration) {
        if let Ok(mut map) = self.inner.requests.lock() {
            *map.entry((kind.to_owned(), outcome.to_owned()))
                .or_insert(0) += 1;
        }
        self.inner.latency.observe(latency);
    }

    /// Records how long one append took to become durable.
    pub fn record_append(&self, latency: Duration) {
        self.inner.append.observe(latency);
    }

    /// Registers a gauge family read at scrape time; the function returns (labels, value).
    pub fn gauge(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> Vec<(String, f64)> + Send + Sync + 'static,
    ) {
        if let Ok(mut gauges) = self.inner.gauges.lock() {
            gauges.push((name.to_owned(), help.to_owned(), Box::new(read)));
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP sijil_requests_total GraphQL requests by kind and outcome.\n");
        out.push_str("# TYPE sijil_requests_total counter\n");
        if let Ok(map) = self.inner.requests.lock() {
            for ((kind, outcome), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "sijil_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        render_histogram(
            &mut out,
            "sijil_request_duration_seconds",
            "GraphQL request latency.",
            &self.inner.latency,
        );
        render_histogram(
            &mut out,
            "sijil_append_duration_seconds",
            "Latency of appends until durable (the write path of mutations).",
            &self.inner.append,
        );
        if let Ok(gauges) = self.inner.gauges.lock() {
            for (name, help, read) in gauges.iter() {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for (labels, value) in read() {
                    if labels.is_empty() {
                        let _ = writeln!(out, "{name} {value}");
                    } else {
                        let _ = writeln!(out, "{name}{{{labels}}} {value}");
                    }
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += h.counts[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += h.overflow.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {}", h.total.load(Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let t = Telemetry::default();
        t.record("query", "ok", Duration::from_millis(3));
        t.record("query", "ok", Duration::from_secs(9));
        t.record_append(Duration::from_micros(400));
        t.gauge("g", "a gauge", || vec![("p=\"x\"".to_owned(), 2.0)]);
        let text = t.render();
        assert!(text.contains("sijil_requests_total{kind=\"query\",outcome=\"ok\"} 2"));
        assert!(text.contains("sijil_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("sijil_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("sijil_append_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("g{p=\"x\"} 2"));
    }
}
