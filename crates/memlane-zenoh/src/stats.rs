//! Counters, per route and direction, readable while the bridge runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::config::{Direction, FullPolicy};
use crate::wire::Kind;

/// The live counters of one route (shared with its threads).
#[derive(Debug, Default)]
pub struct RouteCounters {
    /// Out: messages put on Zenoh.
    pub out_forwarded: AtomicU64,
    /// Out: their payload bytes (without the header).
    pub out_bytes: AtomicU64,
    /// Out: Zenoh puts (one per batch: fewer than the messages when they
    /// come faster than one put each).
    pub out_puts: AtomicU64,
    /// Out: local messages this bridge published itself (received from
    /// Zenoh), not sent back.
    pub out_echo_skipped: AtomicU64,
    /// Out: puts Zenoh refused (logged).
    pub out_errors: AtomicU64,
    /// Out: whether a remote subscriber matches the key now.
    pub out_matched: AtomicBool,
    /// Out: messages put while no remote subscriber matched (they reached
    /// nobody: the gap while a peer was away).
    pub out_unmatched: AtomicU64,
    /// In: messages published locally.
    pub in_forwarded: AtomicU64,
    /// In: Zenoh samples received (each a batch of one or more messages).
    pub in_samples: AtomicU64,
    /// In: their bytes.
    pub in_bytes: AtomicU64,
    /// In: dropped because the local ring was full (`--full drop`).
    pub in_dropped_full: AtomicU64,
    /// In: dropped because larger than the local maximum.
    pub in_dropped_oversized: AtomicU64,
    /// In: dropped because the header was malformed.
    pub in_dropped_malformed: AtomicU64,
    /// In: dropped because already delivered (a sequence number not above
    /// the last one seen from that origin).
    pub in_dropped_duplicate: AtomicU64,
    /// In: this bridge's own puts, seen back (ignored).
    pub in_own: AtomicU64,
    /// In: messages missed: the sum of the gaps in the origins' sequence
    /// numbers (their puts that never arrived, e.g. while the network was
    /// down).
    pub in_missed: AtomicU64,
    /// In: origins (remote bridges) seen.
    pub in_origins: AtomicU64,
}

/// A copy of one route's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(missing_docs)] // the fields are those of `RouteCounters`
pub struct RouteStats {
    pub name: String,
    pub key: String,
    pub direction: Direction,
    pub kind: Kind,
    pub out_forwarded: u64,
    pub out_bytes: u64,
    pub out_puts: u64,
    pub out_echo_skipped: u64,
    pub out_errors: u64,
    pub out_matched: bool,
    pub out_unmatched: u64,
    pub in_forwarded: u64,
    pub in_samples: u64,
    pub in_bytes: u64,
    pub in_dropped_full: u64,
    pub in_dropped_oversized: u64,
    pub in_dropped_malformed: u64,
    pub in_dropped_duplicate: u64,
    pub in_own: u64,
    pub in_missed: u64,
    pub in_origins: u64,
    /// In (channels): what a message finding the local ring full does
    /// (the route's own policy, else the bridge's); `None` for the routes
    /// it does not apply to.
    #[serde(default)]
    pub full: Option<FullPolicy>,
}

impl RouteCounters {
    /// A copy, labelled (`full`: the policy of an inbound channel's full
    /// ring, `None` for other routes).
    pub fn snapshot(
        &self,
        name: &str,
        key: &str,
        direction: Direction,
        kind: Kind,
        full: Option<FullPolicy>,
    ) -> RouteStats {
        RouteStats {
            name: name.to_string(),
            key: key.to_string(),
            direction,
            kind,
            out_forwarded: self.out_forwarded.load(Relaxed),
            out_bytes: self.out_bytes.load(Relaxed),
            out_puts: self.out_puts.load(Relaxed),
            out_echo_skipped: self.out_echo_skipped.load(Relaxed),
            out_errors: self.out_errors.load(Relaxed),
            out_matched: self.out_matched.load(Relaxed),
            out_unmatched: self.out_unmatched.load(Relaxed),
            in_forwarded: self.in_forwarded.load(Relaxed),
            in_samples: self.in_samples.load(Relaxed),
            in_bytes: self.in_bytes.load(Relaxed),
            in_dropped_full: self.in_dropped_full.load(Relaxed),
            in_dropped_oversized: self.in_dropped_oversized.load(Relaxed),
            in_dropped_malformed: self.in_dropped_malformed.load(Relaxed),
            in_dropped_duplicate: self.in_dropped_duplicate.load(Relaxed),
            in_own: self.in_own.load(Relaxed),
            in_missed: self.in_missed.load(Relaxed),
            in_origins: self.in_origins.load(Relaxed),
            full,
        }
    }
}

/// A copy of every route's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// This bridge's origin id (hex), as in its wire headers.
    pub bridge_id: String,
    /// Per route, in configuration order.
    pub routes: Vec<RouteStats>,
}

impl std::fmt::Display for Stats {
    /// A table a person reads: one line per route and direction.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "memlane-bridge {}:", self.bridge_id)?;
        for r in &self.routes {
            if r.direction.outbound() {
                writeln!(
                    f,
                    "  out {} -> {}: forwarded {} ({} bytes, {} puts), echo skipped {}, errors {}, remote subscribers {}, put while none matched {}",
                    r.name,
                    r.key,
                    r.out_forwarded,
                    r.out_bytes,
                    r.out_puts,
                    r.out_echo_skipped,
                    r.out_errors,
                    if r.out_matched { "yes" } else { "none" },
                    r.out_unmatched
                )?;
            }
            if r.direction.inbound() {
                writeln!(
                    f,
                    "  in  {} <- {}: forwarded {} ({} bytes, {} samples), dropped: full {}{}, oversized {}, malformed {}, duplicate {}; missed {} (gaps), own {}, origins {}",
                    r.name,
                    r.key,
                    r.in_forwarded,
                    r.in_bytes,
                    r.in_samples,
                    r.in_dropped_full,
                    match r.full {
                        Some(FullPolicy::Block) => " (policy block)",
                        Some(FullPolicy::Drop) => " (policy drop)",
                        None => "",
                    },
                    r.in_dropped_oversized,
                    r.in_dropped_malformed,
                    r.in_dropped_duplicate,
                    r.in_missed,
                    r.in_own,
                    r.in_origins
                )?;
            }
        }
        Ok(())
    }
}
