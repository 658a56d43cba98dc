//! Persistent bank accounts on sled, supervised by ractor.
//!
//! Run: `cargo run --release --example bank` (data in `./bank_data`), or pass a folder:
//! `cargo run --release --example bank -- /tmp/my_bank`. Run it twice: the second run
//! recovers every account from disk and checks the balances against the first run's.
//!
//! On PostgreSQL, pass a URL instead of the folder (and `--schema NAME`, default `bank`):
//! `cargo run --release --example bank -- postgres://me@localhost/shop --schema bank`.
//!
//! Every record is sealed with a demo key built into the example, unless a key is given as
//! `rush` takes them: `--key-file PATH` (the 32 raw bytes, or 64 hex digits) or else the
//! environment variable `RUSH_KEY` (hex). After a key rotation that did not finish, add
//! the old key with `--old-key-file PATH` (repeatable) or else `RUSH_OLD_KEY` (hex):
//! `cargo run --release --example bank -- ./bank_data --key-file new.key --old-key-file old.key`.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "a demo: it panics on purpose to show supervision, and indexes fixed tables"
)]

use rush::actor::{
    CommandError, EntityRef, EventSourced, Persistence, PersistenceConfig, SnapshotPolicy,
};
use rush::store::{
    Backend, CompressionConfig, EncryptionKey, PostgresConfig, PostgresManager, SledManager,
};
use std::sync::Arc;
use std::time::Instant;

mod account;

use account::{AccountCommand, AuditCommand, AuditLog, BankAccount, Refusal, money};

/// `println!` that ignores a closed stdout (`bank | head`): the demo finishes its work
/// and shuts down cleanly instead of panicking on a broken pipe.
macro_rules! say {
    ($($line:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($line)*);
    }};
}

const OWNERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
/// The key when none is given. A real deployment reads its key from a secret store (here:
/// `--key-file` or `RUSH_KEY`), never from source.
const DEMO_KEY: [u8; 32] = *b"rush-bank-demo-key-32-bytes-long";
const SNAPSHOT_EVERY: u64 = 25;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // ractor reports a handler panic to the supervisor; print one line instead of a trace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "  !! panic in a handler: {}",
            info.payload_as_str().unwrap_or("?")
        )
    }));
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bank: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Where the bank keeps its accounts, and the keys that open them.
struct Options {
    /// A folder, or a PostgreSQL URL.
    folder: String,
    /// The schema, on PostgreSQL.
    schema: String,
    key: EncryptionKey,
    /// Where the key came from, for the first line of the output.
    key_source: String,
    old_keys: Vec<EncryptionKey>,
}

const USAGE: &str = "usage: bank [FOLDER | postgres://URL [--schema NAME]] [--key-file PATH] [--old-key-file PATH]...";

/// Reads `[FOLDER | URL] [--schema NAME] [--key-file PATH] [--old-key-file PATH]...`,
/// then `RUSH_KEY` and `RUSH_OLD_KEY` for what the flags do not give.
fn options(args: Vec<String>) -> Result<Options, Box<dyn std::error::Error>> {
    let (mut folder, mut key_file, mut old_key_files) = (None, None, Vec::new());
    let mut schema = "bank".to_owned();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--schema" => schema = args.next().ok_or(USAGE)?,
            "--key-file" => key_file = Some(args.next().ok_or(USAGE)?),
            "--old-key-file" => old_key_files.push(args.next().ok_or(USAGE)?),
            _ if folder.is_none() && !arg.starts_with("--") => folder = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}; {USAGE}").into()),
        }
    }
    let (key, key_source) = match (key_file, std::env::var("RUSH_KEY")) {
        (Some(path), _) => (EncryptionKey::from_file(&path)?, path),
        (None, Ok(hex)) => (EncryptionKey::from_hex(&hex)?, "RUSH_KEY".to_owned()),
        (None, Err(_)) => (DEMO_KEY.into(), "the demo key".to_owned()),
    };
    let mut old_keys = Vec::new();
    for path in &old_key_files {
        old_keys.push(EncryptionKey::from_file(path)?);
    }
    if let (true, Ok(hex)) = (old_key_files.is_empty(), std::env::var("RUSH_OLD_KEY")) {
        old_keys.push(EncryptionKey::from_hex(&hex)?);
    }
    Ok(Options {
        folder: folder.unwrap_or_else(|| "./bank_data".to_owned()),
        schema,
        key,
        key_source,
        old_keys,
    })
}

/// The whole demo, with the folder and keys of `args` (see [`options`]).
pub async fn run(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let Options {
        folder,
        schema,
        key,
        key_source,
        old_keys,
    } = options(args)?;
    let key_id = key.id();

    // The same bank on either engine: nothing above this line knows which.
    let (manager, place): (Arc<dyn Backend>, String) =
        if folder.starts_with("postgres://") || folder.starts_with("postgresql://") {
            let config = PostgresConfig::new(&folder, &schema);
            let place = config.describe();
            (Arc::new(PostgresManager::open(config)?), place)
        } else {
            let place = format!("sled database at {folder}");
            (Arc::new(SledManager::new(&folder)?), place)
        };
    let config = PersistenceConfig {
        encryption_key: Some(key),
        decryption_keys: old_keys,
        compression: Some(CompressionConfig::default()),
        snapshots: SnapshotPolicy {
            every: Some(SNAPSHOT_EVERY),
            keep: 2,
            delete_covered_events: false,
        },
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(manager.clone(), config).await?;
    let audit = persistence
        .get_or_spawn::<AuditLog>("ledger")
        .await
        .map_err(|e| {
            format!(
                "{e}\n(after `rush rotate-key`, run the bank with --key-file NEW_KEY_FILE, and add --old-key-file OLD_KEY_FILE while the rotation is unfinished)"
            )
        })?;
    let previous = audit.ask(AuditCommand::Read).await?;
    let run = previous.runs + 1;
    say!(
        "Rush bank, run #{run}: {place}, every record encrypted (XChaCha20-Poly1305) and gzip'd when it pays"
    );
    say!("   key id {key_id:08x} ({key_source})");

    // 1. Start (or recover) every account.
    let started = Instant::now();
    let mut accounts: Vec<(String, EntityRef<BankAccount>)> = Vec::new();
    for owner in OWNERS {
        accounts.push((
            owner.to_owned(),
            persistence.get_or_spawn::<BankAccount>(owner).await?,
        ));
    }
    if previous.runs == 0 {
        say!("\n1. Opening {} accounts", OWNERS.len());
        for (i, (owner, account)) in accounts.iter().enumerate() {
            let initial_cents = 100_000 + 25_000 * i as u64;
            account
                .ask(AccountCommand::Open {
                    owner: owner.clone(),
                    initial_cents,
                })
                .await?;
            say!("   {owner:<6} opened with {}", money(initial_cents));
        }
    } else {
        say!(
            "\n1. Recovered {} accounts from the journal in {:?} (snapshot + later events each)",
            OWNERS.len(),
            started.elapsed()
        );
        let mut matching = 0;
        for (owner, account) in &accounts {
            let balance = account.ask(AccountCommand::Balance).await?;
            let expected = previous
                .last_balances
                .iter()
                .find(|(o, _)| o == owner)
                .map(|(_, b)| *b);
            let verdict = if expected == Some(balance) {
                matching += 1;
                "matches the end of the last run"
            } else {
                "DIFFERS from the end of the last run"
            };
            say!("   {owner:<6} {:>12}   {verdict}", money(balance));
        }
        say!(
            "   {matching}/{} balances identical to run #{}'s closing balances",
            OWNERS.len(),
            previous.runs
        );
        if matching != OWNERS.len() {
            return Err("recovered balances differ from the last run's".into());
        }
    }
    let opening_total = total(&accounts).await?;

    // 2. Business as usual: six clients at once (one per account), each doing deposits,
    // withdrawals and transfers to other accounts; some are refused.
    say!("\n2. 300 operations from 6 concurrent clients: deposits, withdrawals, transfers");
    let clients: Vec<_> = (0..accounts.len())
        .map(|a| {
            let accounts = accounts.clone();
            tokio::spawn(async move { client(a, &accounts, run).await })
        })
        .collect();
    let mut activity = Activity::default();
    for client in clients {
        activity.merge(client.await??);
    }
    for refusal in activity.refusals.iter().take(3) {
        say!("   refused: {refusal}");
    }
    let Activity {
        deposited,
        withdrawn,
        transfers,
        refused,
        ..
    } = activity;
    say!(
        "   done: {} deposited, {} withdrawn, {transfers} transfers, {refused} refused (nothing persisted for those)",
        money(deposited),
        money(withdrawn)
    );

    // 3. A bug crashes one account's actor; the supervisor restarts it from the journal.
    let (victim, account) = &accounts[2];
    let before = account.ask(AccountCommand::Balance).await?;
    say!(
        "\n3. Injecting a crash into {victim}'s actor (balance {})",
        money(before)
    );
    match account.ask(AccountCommand::Crash).await {
        Err(CommandError::Failed(e)) => say!("   the command failed: {e}"),
        other => say!("   unexpected: {:?}", other.map_err(|e| e.to_string())),
    }
    let after = account.ask(AccountCommand::Balance).await?;
    let metrics = account.metrics().unwrap_or_default();
    say!(
        "   supervisor restarted it (restarts: {}, incarnation {}); replayed balance {} -> {}",
        metrics.restarts,
        metrics.incarnations,
        money(after),
        if after == before {
            "same as before the crash"
        } else {
            "DIFFERENT"
        }
    );

    // 4. What is on disk.
    say!("\n4. Journal (snapshot every {SNAPSHOT_EVERY} events, newest 2 kept)");
    say!(
        "   {:<6} {:>12} {:>8} {:>16} {:>9}",
        "owner",
        "balance",
        "events",
        "snapshots at",
        "restarts"
    );
    let mut closing = Vec::new();
    let (mut serialized, mut compressed) = (0u64, 0u64);
    for (owner, account) in &accounts {
        let balance = account.ask(AccountCommand::Balance).await?;
        let store = persistence
            .database()
            .store_async::<BankAccount>(BankAccount::COLLECTION, owner)
            .await?;
        let snapshots = store.snapshot_sequence_numbers_async().await?;
        let m = account.metrics().unwrap_or_default();
        serialized += m.serialized_bytes;
        compressed += m.compressed_bytes;
        say!(
            "   {owner:<6} {:>12} {:>8} {:>16} {:>9}",
            money(balance),
            store.highest_sequence_number(),
            format!("{snapshots:?}"),
            m.restarts
        );
        closing.push((owner.clone(), balance));
    }
    let rush::store::WriterStats {
        groups,
        writes: members,
    } = persistence.group_commit_stats();
    manager.flush()?;
    say!(
        "   this run wrote {} of events and snapshots, {} after adaptive gzip ({:.0}% saved: small events stay as they are,",
        bytes(serialized),
        bytes(compressed),
        if serialized == 0 {
            0.0
        } else {
            100.0 * (serialized - compressed) as f64 / serialized as f64
        },
    );
    say!(
        "   snapshots with their 20-line statements shrink); database {} KiB on disk",
        manager.size_on_disk()? / 1024
    );
    say!("   {members} durable writes in {groups} group commits (fsync'd before each reply)");

    // 5. The books must balance.
    let closing_total: u64 = closing.iter().map(|(_, b)| b).sum();
    let expected_total = opening_total + deposited - withdrawn;
    audit.ask(AuditCommand::Close(closing.clone())).await?;
    persistence.shutdown().await?;
    say!("\nSummary of run #{run}");
    say!("   money at start   {:>14}", money(opening_total));
    say!("   + deposits       {:>14}", money(deposited));
    say!("   - withdrawals    {:>14}", money(withdrawn));
    say!("   = expected       {:>14}", money(expected_total));
    say!(
        "   sum of balances  {:>14}   {}",
        money(closing_total),
        if closing_total == expected_total {
            "OK: no money created or lost"
        } else {
            "MISMATCH"
        }
    );
    say!(
        "   run it again to recover these {} balances from {place}",
        closing.len()
    );
    if closing_total != expected_total || after != before {
        return Err("the books do not balance".into());
    }
    Ok(())
}

/// What one client did.
#[derive(Default)]
struct Activity {
    deposited: u64,
    withdrawn: u64,
    transfers: u64,
    refused: u64,
    refusals: Vec<String>,
}

impl Activity {
    fn merge(&mut self, other: Activity) {
        self.deposited += other.deposited;
        self.withdrawn += other.withdrawn;
        self.transfers += other.transfers;
        self.refused += other.refused;
        self.refusals.extend(other.refusals);
    }
}

const NOTES: [&str; 4] = [
    "monthly salary payment; employer ACME Industrial Supplies Ltd; IBAN ES91 2100 0418 4502 0005 1332; payroll batch approved by finance",
    "rent for apartment 4B, Calle Mayor 12, 28013 Madrid; standing order; IBAN ES79 2100 0813 6101 2345 6789; landlord Inmuebles Centro SL",
    "invoice settlement for consulting services rendered in October; purchase order PO-2026-1187; IBAN DE89 3704 0044 0532 0130 00",
    "card purchase at a grocery store; contactless payment; merchant category 5411; terminal 0042; acquirer reference 74987502026",
];

/// One client: 50 operations on account `a` (deterministic per run).
async fn client(
    a: usize,
    accounts: &[(String, EntityRef<BankAccount>)],
    run: u64,
) -> Result<Activity, CommandError<Refusal>> {
    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ (run << 8) ^ a as u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut done = Activity::default();
    let (owner, account) = &accounts[a];
    for op in 0..50u64 {
        let cents = 1 + next() % 90_000;
        let memo = format!(
            "{} (ref RUSH-{run:03}-{a}-{op:04})",
            NOTES[(next() % 4) as usize]
        );
        let outcome = match op % 3 {
            0 => account
                .ask(AccountCommand::Deposit { cents, memo })
                .await
                .map(|_| done.deposited += cents),
            1 => account
                .ask(AccountCommand::Withdraw { cents, memo })
                .await
                .map(|_| done.withdrawn += cents),
            _ => {
                let b = (a + 1 + (next() % (accounts.len() as u64 - 1)) as usize) % accounts.len();
                transfer(account, &accounts[b].1, cents, &memo)
                    .await
                    .map(|()| done.transfers += 1)
            }
        };
        match outcome {
            Ok(()) => {}
            Err(CommandError::Rejected(why)) => {
                done.refused += 1;
                done.refusals.push(format!(
                    "{owner} {} of {}: {why}",
                    ["deposit", "withdrawal", "transfer"][(op % 3) as usize],
                    money(cents)
                ));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(done)
}

/// Withdraws from `from`, deposits into `to`; if the deposit fails, puts the money back.
async fn transfer(
    from: &EntityRef<BankAccount>,
    to: &EntityRef<BankAccount>,
    cents: u64,
    memo: &str,
) -> Result<(), CommandError<Refusal>> {
    from.ask(AccountCommand::Withdraw {
        cents,
        memo: format!("transfer out: {memo}"),
    })
    .await?;
    if let Err(e) = to
        .ask(AccountCommand::Deposit {
            cents,
            memo: format!("transfer in: {memo}"),
        })
        .await
    {
        from.ask(AccountCommand::Deposit {
            cents,
            memo: format!("transfer refund: {memo}"),
        })
        .await?;
        return Err(e);
    }
    Ok(())
}

async fn total(
    accounts: &[(String, EntityRef<BankAccount>)],
) -> Result<u64, CommandError<Refusal>> {
    let mut sum = 0;
    for (_, account) in accounts {
        sum += account.ask(AccountCommand::Balance).await?;
    }
    Ok(sum)
}

fn bytes(n: u64) -> String {
    if n >= 10 * 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}
