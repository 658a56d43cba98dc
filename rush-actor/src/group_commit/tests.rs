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
    }
}

#[tokio::test]
async fn each_member_of_a_group_gets_its_own_outcome() {
    let db = MemoryManager::default();
    let writer = GroupCommit::start(Arc::new(db.clone()), Durability::Immediate).unwrap();
    // "b" is taken already: its member fails alone, the others commit.
    db.commit(put(b"b")).unwrap().unwrap();
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
    assert!(db.get(b"a").unwrap().is_some() && db.get(b"c").unwrap().is_some());
    let ran = writer.run(|| 42).await.unwrap();
    assert_eq!(ran, 42);
}
