//! Results: latency percentiles and throughput.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::Job;

/// A histogram of round-trip times in nanoseconds, 1 ns to 60 s, 3
/// significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// One-way latency (half a round trip) of one transport and size.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    /// The transport.
    pub transport: String,
    /// Message size in bytes.
    pub size: usize,
    /// Subscribers (fan-out runs; 1 otherwise).
    pub subscribers: u32,
    /// Round trips measured.
    pub round_trips: u64,
    /// Median one-way latency, ns.
    pub p50_ns: f64,
    /// 99th percentile, ns.
    pub p99_ns: f64,
    /// 99.9th percentile, ns.
    pub p999_ns: f64,
    /// Largest, ns.
    pub max_ns: f64,
}

impl LatencyResult {
    pub(crate) fn from_round_trips(job: &Job, h: &Histogram<u64>) -> LatencyResult {
        let half = |v: u64| v as f64 / 2.0;
        LatencyResult {
            transport: job.transport.clone(),
            size: job.size,
            subscribers: job.subscribers,
            round_trips: h.len(),
            p50_ns: half(h.value_at_quantile(0.5)),
            p99_ns: half(h.value_at_quantile(0.99)),
            p999_ns: half(h.value_at_quantile(0.999)),
            max_ns: half(h.max()),
        }
    }
}

/// Messages per second in one direction.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputResult {
    /// The transport.
    pub transport: String,
    /// Message size in bytes.
    pub size: usize,
    /// Subscribers (fan-out runs; 1 otherwise).
    pub subscribers: u32,
    /// Messages sent.
    pub messages: u64,
    /// Seconds from the first send until the child had every message.
    pub seconds: f64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Payload bytes per second (per subscriber).
    pub bytes_per_s: f64,
}

impl ThroughputResult {
    pub(crate) fn new(job: &Job, elapsed: Duration) -> ThroughputResult {
        let s = elapsed.as_secs_f64().max(1e-9);
        let mps = job.count as f64 / s;
        ThroughputResult {
            transport: job.transport.clone(),
            size: job.size,
            subscribers: job.subscribers,
            messages: job.count,
            seconds: s,
            msgs_per_s: mps,
            bytes_per_s: mps * job.size as f64,
        }
    }

    /// A throughput measured without a child (one-process memcpy).
    pub fn local(transport: &str, size: usize, count: u64, elapsed: Duration) -> ThroughputResult {
        let s = elapsed.as_secs_f64().max(1e-9);
        let mps = count as f64 / s;
        ThroughputResult {
            transport: transport.to_string(),
            size,
            subscribers: 1,
            messages: count,
            seconds: s,
            msgs_per_s: mps,
            bytes_per_s: mps * size as f64,
        }
    }
}
