//! The README's key rotation, followed as written: the bank example writes its database
//! under its demo key, the reader writes the old and new key files with the README's
//! commands, `rush rotate-key` re-encrypts the database, and the next bank run with the new
//! key (plus the old one as a decryption key when the rotation was interrupted) recovers
//! every balance. The bank runs in a child process (this test binary, re-run), so that
//! each run ends by releasing the database as the real example does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../examples/bank/main.rs"]
#[allow(dead_code, reason = "only the bank's `run` is used")]
mod bank;
#[path = "support/cli.rs"]
mod cli;

use cli::{Run, rush};
use rush::store::inspect::Inspector;
use rush::store::{EncryptionKey, Keyring, SledConfig, SledManager};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// The bank's arguments for the child, one per line.
const ARGS_VAR: &str = "RUSH_BANK_TEST_ARGS";

/// Not a test on its own: the child process of the tests below, which runs the bank
/// example with the arguments in `RUSH_BANK_TEST_ARGS`.
#[test]
fn run_the_bank_for_another_test() {
    let Ok(args) = std::env::var(ARGS_VAR) else {
        return;
    };
    let args = args.lines().map(str::to_owned).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Err(error) = runtime.block_on(bank::run(args)) {
        panic!("bank: {error}");
    }
}

/// Runs the bank example in a child process, in `dir`, with `args`.
fn bank(dir: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "run_the_bank_for_another_test",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(dir)
        .env(ARGS_VAR, args.join("\n"));
    for var in ["RUSH_KEY", "RUSH_NEW_KEY", "RUSH_OLD_KEY"] {
        command.env_remove(var);
    }
    Run::of(&command.output().unwrap())
}

/// Runs one line of the README in `dir`.
fn sh(dir: &Path, line: &str) {
    let status = Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
}

/// `rush rotate-key` on `<dir>/bank_data` from `old.key` to `new.key`, as the README says.
fn rotate_key(dir: &Path) -> Run {
    let key = |name: &str| dir.join(name).to_string_lossy().into_owned();
    rush(
        &dir.join("bank_data"),
        &[
            "rotate-key",
            "--key-file",
            &key("old.key"),
            "--new-key-file",
            &key("new.key"),
        ],
        &[],
    )
}

/// The README's commands that write the key files.
fn write_key_files(dir: &Path) {
    sh(dir, "printf %s rush-bank-demo-key-32-bytes-long > old.key");
    sh(dir, "head -c 32 /dev/urandom > new.key");
}

fn assert_recovered_every_balance(run: &Run, previous_run: u64) {
    assert_eq!(run.code, 0, "{run:?}");
    let line = format!("6/6 balances identical to run #{previous_run}'s closing balances");
    assert!(run.stdout.contains(&line), "{}", run.stdout);
}

#[test]
fn after_rush_rotate_key_the_bank_recovers_every_balance_with_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = bank(dir.path(), &["./bank_data"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains("run #1"), "{}", first.stdout);

    write_key_files(dir.path());
    let rotated = rotate_key(dir.path());
    assert_eq!(rotated.code, 0, "{rotated:?}");

    let second = bank(dir.path(), &["./bank_data", "--key-file", "new.key"]);
    assert_recovered_every_balance(&second, 1);

    // The demo key no longer opens the database, and the bank says what to do.
    let stale = bank(dir.path(), &["./bank_data"]);
    assert_ne!(stale.code, 0, "{stale:?}");
    assert!(stale.stderr.contains("--key-file"), "{}", stale.stderr);
}

#[test]
fn after_an_interrupted_rotation_the_bank_recovers_with_the_old_key_as_decryption_key() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(bank(dir.path(), &["./bank_data"]).code, 0);
    write_key_files(dir.path());
    let data = dir.path().join("bank_data");
    {
        // What Ctrl-C leaves: the first page sealed with the new key, the rest with the old.
        let backend = SledManager::open_existing(&data, SledConfig::default()).unwrap();
        let old = EncryptionKey::from_file(dir.path().join("old.key")).unwrap();
        let new = EncryptionKey::from_file(dir.path().join("new.key")).unwrap();
        let inspector = Inspector::with_keyring(Arc::new(backend), &Keyring::new(old));
        let report = inspector.rotate_key(&new, &mut |_| false).unwrap();
        assert!(report.interrupted, "{report:?}");
    }
    cli::release(&data);

    let new_only = bank(dir.path(), &["./bank_data", "--key-file", "new.key"]);
    assert_ne!(new_only.code, 0, "{new_only:?}");
    assert!(
        new_only.stderr.contains("as a decryption key"),
        "{}",
        new_only.stderr
    );

    let both = bank(
        dir.path(),
        &[
            "./bank_data",
            "--key-file",
            "new.key",
            "--old-key-file",
            "old.key",
        ],
    );
    assert_recovered_every_balance(&both, 1);

    // Finishing the rotation (both keys, as the README says) lets the new key alone open it.
    let finished = rotate_key(dir.path());
    assert_eq!(finished.code, 0, "{finished:?}");
    let after = bank(dir.path(), &["./bank_data", "--key-file", "new.key"]);
    assert_recovered_every_balance(&after, 2);
}
