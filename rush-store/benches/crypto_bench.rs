//! Sealing and opening records (XChaCha20-Poly1305, `EncryptionKey::seal` / `open`) at 100 B,
//! 1 KiB and 16 KiB, single-threaded: MB/s and ns per record, best of 5 rounds of about
//! 0.3 s each, with the process CPU time per record over all rounds.
//!
//! Built inside the repository it gets the repository's compiler flags (`.cargo/config.toml`,
//! if any: there is none since the sealing moved to ring, so the two tables should agree);
//! `.ci/crypto-downstream` builds this same file in a fresh crate outside the repository,
//! as an application would, so the two tables compare what users get.
//!
//! `cargo bench -p rush-store --bench crypto_bench`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/cpu.rs"]
#[allow(
    dead_code,
    reason = "the shared helper also formats, which this bench does itself"
)]
mod cpu;

use rush_store::EncryptionKey;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [usize; 3] = [100, 1024, 16 * 1024];
const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_millis(300);

/// Records sealed with one key by one thread, as a writer seals them.
fn sealed(key: &EncryptionKey, plaintext: &[u8], count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| key.seal(b"accounts/alice#1", plaintext).unwrap())
        .collect()
}

/// Runs `op` over and over for `ROUND`, `ROUNDS` times: best ns per call, CPU ns per call.
fn measure(mut op: impl FnMut() -> usize) -> (f64, f64) {
    let cpu_before = cpu::process_cpu();
    let mut best = f64::MAX;
    let mut total_calls = 0usize;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut calls = 0usize;
        while start.elapsed() < ROUND {
            calls += op();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / calls as f64);
        total_calls += calls;
    }
    let cpu = cpu::process_cpu().saturating_sub(cpu_before);
    (best, cpu.as_nanos() as f64 / total_calls as f64)
}

fn main() {
    let key = EncryptionKey::from([7u8; 32]);
    let flags = std::env::var("RUSH_BENCH_LABEL").unwrap_or_else(|_| "in the repository".into());
    println!("crypto_bench ({flags}): one thread, best of {ROUNDS} x {ROUND:?}");
    println!("| record | seal ns | seal MB/s | seal CPU ns | open ns | open MB/s | open CPU ns |");
    println!("|---|---|---|---|---|---|---|");
    for size in SIZES {
        let plaintext = vec![0x5a_u8; size];
        let (seal_ns, seal_cpu) = measure(|| {
            for _ in 0..64 {
                black_box(
                    key.seal(b"accounts/alice#1", black_box(&plaintext))
                        .unwrap(),
                );
            }
            64
        });
        let records = sealed(&key, &plaintext, 64);
        let (open_ns, open_cpu) = measure(|| {
            for record in &records {
                black_box(key.open(b"accounts/alice#1", black_box(record)).unwrap());
            }
            records.len()
        });
        let mbs = |ns: f64| size as f64 / ns * 1e3;
        println!(
            "| {size} B | {seal_ns:.0} | {:.0} | {seal_cpu:.0} | {open_ns:.0} | {:.0} | {open_cpu:.0} |",
            mbs(seal_ns),
            mbs(open_ns)
        );
    }
}
