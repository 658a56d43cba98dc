//! An application's own inspector: `rush::cli::Cli` with its event types registered
//! prints decoded events (run in this process, output captured).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{Account, KEY, create, key_file};
use std::process::ExitCode;

#[test]
fn a_registered_collection_prints_decoded_events() {
    let db = create(Some(&KEY));
    let key = key_file(&db, "app.key", &KEY);
    let mut out = Vec::new();
    let path = db.path.to_string_lossy().into_owned();
    let code = rush::cli::Cli::new()
        .decode::<Account>("accounts")
        .run_with_output(
            [
                "inspect",
                &path,
                "--key-file",
                &key,
                "events",
                "accounts",
                "alice",
            ],
            &mut out,
        );
    assert_eq!(code, ExitCode::SUCCESS);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], serde_json::json!({ "Deposited": 5000 }));
    assert_eq!(lines[2]["event"], serde_json::json!({ "Withdrawn": 1 }));
    assert_eq!(lines[0]["event_type"], "Deposited");
}
