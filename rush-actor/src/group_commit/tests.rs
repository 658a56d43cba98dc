use super::*;
use rush_store::{Guard, MemoryManager, WriteOp};

fn put(key: &[u8]) -> WriteBatch {
    WriteBatch {
        guards: vec![Guard {
            key: key.to_vec(),
            expected: None,
        }],
        ops: vec![WriteOp::Put {
            key: key.to_vec(),
            value: b"v".to_vec(),
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn each_member_of_a_group_gets_its_own_outcome() {
    let db = MemoryManager::default();
    let writer = GroupCommit::start(Arc::new(db.clone()), Durability::Immediate).unwrap();
    // "b" is taken already: its member fails alone, the others commit.
    let old = WriteBatch {
        guards: vec![],
        ops: vec![WriteOp::Put {
            key: b"b".to_vec(),
            value: b"old".to_vec(),
        }],
        ..Default::default()
    };
    db.commit(&old).unwrap().unwrap();
    let tasks: Vec<_> = [b"a", b"b", b"c"]
        .into_iter()
        .map(|key| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.commit(put(key)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert!(matches!(outcomes[0], Ok(Ok(()))));
    assert!(matches!(
        &outcomes[1],
        Ok(Err(GuardFailed { index: 0, .. }))
    ));
    assert!(matches!(outcomes[2], Ok(Ok(()))));
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        db.get(b"b").unwrap().as_deref(),
        Some(&b"old"[..]),
        "the failed member wrote nothing"
    );
    assert_eq!(db.get(b"c").unwrap().as_deref(), Some(&b"v"[..]));
    let ran = writer.run(|| 42).await.unwrap();
    assert_eq!(ran, 42);
}
