//! scratch (not committed): 1,000 actors under durable load for a few seconds
#![allow(clippy::unwrap_used, missing_docs, clippy::panic)]
use rush_actor::{Effect, EventSourced, Persistence, PersistenceConfig};
use rush_store::{PersistentActor, SledManager};
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dep {
    amount: u64,
    memo: String,
}
#[derive(Default, Clone, Serialize, Deserialize)]
struct Acc {
    balance: u64,
}
impl PersistentActor for Acc {
    type Event = Dep;
    fn apply(&mut self, e: &Dep) {
        self.balance += e.amount;
    }
}
impl EventSourced for Acc {
    const COLLECTION: &'static str = "accounts";
    type Command = u64;
    type Reply = u64;
    type Rejection = String;
    fn decide(&self, n: u64) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(Dep {
            amount: n,
            memo: "salary payment from employer".into(),
        })
        .then_reply(|s: &Acc| s.balance))
    }
}
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let p = Persistence::open(
            SledManager::new(dir.path()).unwrap(),
            PersistenceConfig::default(),
        )
        .await
        .unwrap();
        let stop = std::time::Instant::now() + std::time::Duration::from_secs(6);
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let e = p.entity::<Acc>(&format!("acct-{i:06}"));
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while std::time::Instant::now() < stop {
                        e.ask(1).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        println!("{:.0} cmds/s", total as f64 / 6.0);
        p.shutdown().await;
    });
}
