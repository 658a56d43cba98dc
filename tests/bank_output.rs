//! The bank example piped into a reader that stops early (`bank | head`) finishes its work
//! and exits 0, instead of panicking on the broken pipe (issue 12); the next run recovers
//! every balance, so the first one shut down cleanly. The bank runs in a child process
//! (this test binary, re-run) whose stdout is a pipe the test closes after one line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../examples/bank/main.rs"]
#[allow(dead_code, reason = "only the bank's `run` is used")]
mod bank;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The bank's folder, for the child.
const DIR_VAR: &str = "RUSH_BANK_OUTPUT_DIR";

/// Not a test on its own: the child process of the test below. It runs the bank and ends
/// the process itself (so the test harness prints nothing after it), 0 if the bank
/// finished.
#[test]
fn run_the_bank_for_another_test() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let finished = runtime.block_on(bank::run(vec![dir])).is_ok();
    drop(runtime);
    std::process::exit(if finished { 0 } else { 1 });
}

/// The bank in a child process on `data`, its stdout a pipe.
fn bank(data: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["run_the_bank_for_another_test", "--exact", "--nocapture"])
        .env(DIR_VAR, data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

#[test]
fn the_bank_finishes_cleanly_when_its_output_is_closed_early() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank_data");
    let mut child = bank(&data).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.starts_with("Rush bank"));
    assert!(first.is_some_and(|line| line.contains("run #1")));
    drop(lines); // Every later line meets a closed pipe.
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");

    let Output { status, stdout, .. } = bank(&data).output().unwrap();
    let text = String::from_utf8_lossy(&stdout);
    assert!(status.success(), "{text}");
    assert!(text.contains("6/6 balances identical"), "{text}");
}
