//! Ctrl-C during a long `rush rotate-key`: the binary stops after its current page, exits
//! 130 with a message saying how to finish, leaves a database that reads with both keys,
//! and a second run finishes the work.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{Account, Event, KEY as OLD, NEW_KEY as NEW, hex, key_file, rush};
use rush::store::{Backend, SledManager, Store};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_stops_rotate_key_between_pages_and_a_second_run_finishes() {
    let db = cli::create(Some(&OLD));
    {
        // Enough records that a debug build takes seconds to re-encrypt them all.
        let manager = SledManager::new(&db.path).unwrap();
        for entity in 0..40 {
            let mut store = Store::<Account>::new(
                "accounts",
                &format!("bulk-{entity}"),
                manager.clone(),
                Some(&OLD),
                false,
            )
            .unwrap();
            store.set_durability(rush::store::Durability::Periodic);
            let events: Vec<Event> = (0..1000u64).map(Event::Deposited).collect();
            store.persist_batch(&events).unwrap();
        }
        manager.flush().unwrap();
    }
    cli::release(&db.path);
    let old = key_file(&db, "old.key", &OLD);
    let new = key_file(&db, "new.key", &NEW);

    let child = Command::new(env!("CARGO_BIN_EXE_rush"))
        .arg(&db.path)
        .args(["rotate-key", "--key-file", &old, "--new-key-file", &new])
        .env_remove("RUSH_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to open the database and install its handler, then press Ctrl-C.
    std::thread::sleep(Duration::from_millis(400));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("run rotate-key again"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped between pages"
    );

    // Half done: the old key alone no longer opens everything, both keys do.
    let both = rush(
        &db.path,
        &["verify"],
        &[("RUSH_KEY", hex(&NEW)), ("RUSH_OLD_KEY", hex(&OLD))],
    );
    assert_eq!(both.code, 0, "{both:?}");
    let old_only = rush(&db.path, &["verify"], &[("RUSH_KEY", hex(&OLD))]);
    assert_ne!(
        old_only.code, 0,
        "part of the records must be re-encrypted already"
    );

    // A second run finishes; then the new key alone reads everything.
    let again = rush(
        &db.path,
        &["rotate-key", "--key-file", &old, "--new-key-file", &new],
        &[],
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("were already sealed with it"),
        "{again:?}"
    );
    let new_only = rush(&db.path, &["verify"], &[("RUSH_KEY", hex(&NEW))]);
    assert_eq!(new_only.code, 0, "{new_only:?}");
}
