//! The bank example on PostgreSQL (issue 11): given a URL instead of a folder, it runs,
//! and a second run recovers every balance from the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../examples/bank/main.rs"]
#[allow(dead_code, reason = "only the bank's `run` is used")]
mod bank;
#[path = "../rush-store/tests/support/postgres_server.rs"]
mod postgres_server;

#[test]
fn the_bank_runs_twice_on_postgresql_and_recovers_every_balance() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let args = vec![server.url.clone(), "--schema".into(), "bank".into()];
    for run in 1..=2 {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        if let Err(error) = runtime.block_on(bank::run(args.clone())) {
            panic!("bank run {run}: {error}");
        }
    }
}
