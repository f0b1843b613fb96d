//! The fuzz targets' entry points (`memlane::fuzzing`) over a fixed
//! pseudo-random corpus, in every `cargo test`, without libFuzzer: random
//! bytes of many lengths, mutations of valid inputs, and crafted edge
//! cases. Each entry point panics if a decoder misbehaves; a failure names
//! the generator's seed and the input's index, so it can be replayed.
//! (The coverage-guided runs are `bash scripts/fuzz.sh`.)

use memlane::fuzzing;

/// A deterministic xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A length: mostly short, sometimes up to `max`.
    fn len(&mut self, max: u64) -> usize {
        match self.below(8) {
            0..=4 => self.below(160) as usize,
            5 | 6 => self.below(max / 2) as usize,
            _ => self.below(max) as usize,
        }
    }

    /// Mutates `b` in place: overwrites a few bytes or 8-byte words with
    /// random or boundary values, and sometimes truncates or extends it.
    fn mutate(&mut self, b: &mut Vec<u8>) {
        const WORDS: [u64; 8] = [0, 1, 15, 16, 4096, u32::MAX as u64, 1 << 63, u64::MAX];
        for _ in 0..=self.below(4) {
            if b.is_empty() {
                break;
            }
            let at = self.below(b.len() as u64) as usize;
            match self.below(4) {
                0 => b[at] = self.next() as u8,
                1 => b[at] ^= 1 << self.below(8),
                _ => {
                    let w = if self.below(2) == 0 {
                        WORDS[self.below(8) as usize]
                    } else {
                        self.next()
                    };
                    let at = at & !7;
                    let n = (b.len() - at).min(8);
                    b[at..at + n].copy_from_slice(&w.to_ne_bytes()[..n]);
                }
            }
        }
        match self.below(8) {
            0 => b.truncate(self.below(b.len() as u64 + 1) as usize),
            1 => {
                let extra = self.len(256);
                b.extend(self.bytes(extra));
            }
            _ => {}
        }
    }
}

/// Prints the input that made the entry point panic (dropped only while
/// unwinding: `run` forgets it otherwise).
struct Replay<'a> {
    name: &'a str,
    seed: u64,
    index: usize,
    input: &'a [u8],
}

impl Drop for Replay<'_> {
    fn drop(&mut self) {
        eprintln!(
            "{}: input {} of the corpus with seed {:#x} ({} bytes): {:02x?}",
            self.name,
            self.index,
            self.seed,
            self.input.len(),
            self.input
        );
    }
}

/// Runs `n` inputs through `f`: half random bytes, half mutations of
/// `seed`. Returns the sum of `f`'s results.
fn run(name: &str, seed: u64, n: usize, max_len: u64, valid: &[u8], f: impl Fn(&[u8]) -> usize) {
    let mut rng = Rng(seed);
    let mut total = 0;
    for i in 0..n {
        let input = if i % 2 == 0 {
            let len = rng.len(max_len);
            rng.bytes(len)
        } else {
            let mut b = valid.to_vec();
            rng.mutate(&mut b);
            b
        };
        let guard = Replay {
            name,
            seed,
            index: i,
            input: &input,
        };
        total += f(&input);
        std::mem::forget(guard);
    }
    println!("{name}: {n} inputs, {total} accepted/read");
}

#[test]
fn header_corpus() {
    let seed = fuzzing::header_seed();
    assert_eq!(fuzzing::header(&seed), 1);
    run("header", 0x5eed_0001, 20_000, 300, &seed, fuzzing::header);
    // Edge cases: every prefix of a valid header, and a valid header
    // followed by each possible tail length.
    for n in 0..=seed.len() {
        fuzzing::header(&seed[..n]);
    }
    let mut b = seed.clone();
    b.extend_from_slice(&(4096u64 + 8192).to_ne_bytes());
    fuzzing::header(&b);
    b.extend_from_slice(&u64::MAX.to_ne_bytes());
    fuzzing::header(&b);
}

#[test]
fn channel_config_corpus() {
    let seed = fuzzing::channel_config_seed();
    assert_eq!(fuzzing::channel_config(&seed), 2);
    run(
        "channel_config",
        0x5eed_0002,
        20_000,
        300,
        &seed,
        fuzzing::channel_config,
    );
    for n in 0..=seed.len() {
        fuzzing::channel_config(&seed[..n]);
    }
    // Each field of the valid config set to each boundary value.
    for field in (0..48).step_by(4) {
        for w in [0u32, 1, 2, 15, 16, 1024, 4096, u32::MAX / 2, u32::MAX] {
            let mut b = seed.clone();
            b[field..field + 4].copy_from_slice(&w.to_ne_bytes());
            fuzzing::channel_config(&b);
        }
    }
}

#[test]
fn ring_corpus() {
    let seed = fuzzing::ring_seed();
    assert_eq!(fuzzing::ring(&seed), 3);
    let mut rng = Rng(0x5eed_0003);
    let mut read = 0;
    // Random bytes, plain and shaped (see `fuzzing::ring`); lengths up
    // to past the end of the control block.
    for i in 0..10_000 {
        let len = rng.len(2 * fuzzing::RING_CAPACITY + 200);
        let mut b = rng.bytes(len);
        if let Some(opts) = b.get_mut(8) {
            *opts = (i % 4) as u8;
        }
        read += fuzzing::ring(&b);
    }
    // Mutations of a valid ring, plain and shaped.
    run(
        "ring (mutated)",
        0x5eed_0004,
        10_000,
        600,
        &seed,
        fuzzing::ring,
    );
    // Every subscriber offset with a committed header of each kind.
    for off in (0..fuzzing::RING_CAPACITY).step_by(16) {
        for meta in [0u64, 1000, 1001, 1 << 32, (1 << 32) | 1, 2 << 32, 4 << 32] {
            let p = 7 * fuzzing::RING_CAPACITY + off;
            let mut b = p.to_ne_bytes().to_vec();
            b.push(0);
            b.extend_from_slice(&(p ^ 0x6d65_6d6c_616e_6521).to_ne_bytes());
            b.extend_from_slice(&meta.to_ne_bytes());
            read += fuzzing::ring(&b);
        }
    }
    assert!(read > 0, "no random input got past the stamp check");
    println!("ring: {read} messages read from random and crafted inputs");
}

#[test]
fn latest_slot_corpus() {
    let seed = fuzzing::latest_slot_seed();
    assert_eq!(fuzzing::latest_slot(&seed), 2);
    run(
        "latest_slot",
        0x5eed_0005,
        20_000,
        4096,
        &seed,
        fuzzing::latest_slot,
    );
    // Every prefix of the seed (a geometry cut short, words missing).
    for n in (0..=seed.len()).step_by(7) {
        fuzzing::latest_slot(&seed[..n]);
    }
}

#[test]
fn type_record_corpus() {
    let seed = fuzzing::type_record_seed();
    assert_eq!(fuzzing::type_record(&seed), 1);
    run(
        "type_record",
        0x5eed_0006,
        20_000,
        1200,
        &seed,
        fuzzing::type_record,
    );
    for n in 0..=seed.len() {
        fuzzing::type_record(&seed[..n]);
    }
    // Each 4-byte field of the header set to each boundary value.
    for field in (0..64).step_by(4) {
        for w in [0u32, 1, 2, 3, 8, 16, 1024, 1025, u32::MAX] {
            let mut b = seed.clone();
            b[field..field + 4].copy_from_slice(&w.to_ne_bytes());
            fuzzing::type_record(&b);
        }
    }
    // The schema form: a schema and a message, mutated.
    let seed = fuzzing::schema_message_seed();
    assert_eq!(fuzzing::type_record(&seed), 2);
    run(
        "type_record (schema)",
        0x5eed_0016,
        20_000,
        600,
        &seed,
        fuzzing::type_record,
    );
    for n in 0..=seed.len() {
        fuzzing::type_record(&seed[..n]);
    }
}
