//! Entry points for the fuzz targets (`fuzz/fuzz_targets/bridge_wire.rs`,
//! run by `scripts/fuzz.sh`) and for the unit tests that replay them
//! without libFuzzer. Built with the `fuzzing` feature (and in tests).
//!
//! Every inbound Zenoh payload is bytes another machine wrote: the wire
//! decoder must refuse what is malformed without panicking, never hand out
//! bytes outside the payload, and give back exactly what a sending bridge
//! framed.

use crate::wire::{self, Batch, Header, Kind, HEADER_LEN};

/// Decodes `data` as an inbound payload, and frames it as outbound
/// messages, checking the decoder's promises:
///
/// * framing arbitrary bytes ends, yields at most one frame per header
///   that fits, and every frame's bytes lie inside the payload, each after
///   the one before;
/// * [`wire::decode`] accepts a payload exactly when it is one valid frame,
///   and then agrees with [`wire::frames`];
/// * a header accepted by [`wire::decode_header`] says at most the bytes
///   that follow it, fewer exactly when another frame follows;
/// * a [`Batch`] of messages cut from `data` (each led by a length byte)
///   decodes to exactly those messages and headers, in order.
///
/// # Panics
///
/// When one of these does not hold (what the fuzzer reports).
///
/// # Examples
///
/// ```
/// memlane_zenoh::fuzzing::wire(b"mlzb\x02\x00\x00\x00 not quite a header");
/// ```
pub fn wire(data: &[u8]) {
    inbound(data);
    outbound(data);
}

fn inbound(data: &[u8]) {
    let whole = data.as_ptr_range();
    let mut end = whole.start;
    let mut seen = 0usize;
    for frame in wire::frames(data) {
        seen += 1;
        assert!(
            seen <= data.len() / HEADER_LEN + 1,
            "{seen} frames from {} bytes",
            data.len()
        );
        if let Ok((_, bytes)) = frame {
            let r = bytes.as_ptr_range();
            assert!(
                r.start >= end && r.end <= whole.end,
                "a frame's bytes outside the payload or out of order"
            );
            end = r.end;
        }
    }
    if let Ok((h, bytes)) = wire::decode(data) {
        assert_eq!(bytes.len() + HEADER_LEN, data.len(), "one frame, all of it");
        let mut it = wire::frames(data);
        assert_eq!(it.next(), Some(Ok((h, bytes))));
        assert_eq!(it.next(), None);
    }
    if let Some(head) = data.first_chunk::<HEADER_LEN>() {
        let follow = data.len() - HEADER_LEN;
        for after in [0, 1, follow, follow.saturating_add(1), usize::MAX] {
            if let Ok(f) = wire::decode_header(head, after) {
                assert!(f.len <= after, "{} bytes said, {after} follow", f.len);
                assert_eq!(f.more, f.len < after, "MORE exactly when bytes remain");
                assert!(f.header.seq > 0, "sequence numbers start at 1");
            }
        }
    }
}

fn outbound(data: &[u8]) {
    let mut batch = Batch::default();
    let mut sent = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let (msg, tail) = tail.split_at(usize::from(n).min(tail.len()));
        let seq = sent.len() as u64 + 1;
        let h = Header {
            kind: if n % 2 == 0 {
                Kind::Channel
            } else {
                Kind::Latest
            },
            origin: (u128::from(n) << 64) | u128::from(seq),
            seq,
        };
        batch.push(h, msg);
        sent.push((h, msg));
        rest = tail;
    }
    assert_eq!(batch.frames(), sent.len());
    let bytes = batch.take();
    assert!(
        batch.is_empty() && batch.bytes() == 0,
        "take leaves it empty"
    );
    if sent.is_empty() {
        assert!(bytes.is_empty());
        return;
    }
    let got: Result<Vec<_>, _> = wire::frames(&bytes).collect();
    assert_eq!(
        got.as_deref(),
        Ok(&sent[..]),
        "a batch decodes to what was framed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid payload of `n` frames, then mutated: what the fuzzer starts
    /// from, replayed without libFuzzer.
    #[test]
    fn the_wire_checks_hold_on_valid_and_mutated_payloads() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in 0..3000u64 {
            let mut batch = Batch::default();
            for i in 0..n % 5 {
                let len = (next() % 90) as usize;
                let h = Header {
                    kind: if i % 2 == 0 {
                        Kind::Channel
                    } else {
                        Kind::Latest
                    },
                    origin: u128::from(n),
                    seq: i + 1,
                };
                batch.push(h, &vec![i as u8; len]);
            }
            let mut bytes = batch.take();
            wire(&bytes);
            for _ in 0..n % 4 {
                if bytes.is_empty() {
                    break;
                }
                let r = next();
                let i = (r as usize) % bytes.len();
                bytes[i] ^= (r >> 32) as u8 | 1;
            }
            let cut = (next() as usize) % (bytes.len() + 1);
            wire(&bytes);
            wire(&bytes[..cut]);
            wire(&bytes[cut..]);
        }
        wire(&[]);
        wire(&[0; HEADER_LEN]);
        wire(&[0xff; 3 * HEADER_LEN]);
    }
}
