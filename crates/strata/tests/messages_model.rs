//! Model test: message append/list against a simple in-memory model.
//!
//! Random sequences of appends (single and batched, with and without
//! idempotency keys) and reads run against the real facade on SQLite and
//! against a `Vec`-per-conversation model; every result must agree. A
//! second property runs several appenders concurrently and checks the
//! invariants that must hold whatever the interleaving.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use strata::{
    Config, MessageQuery, MessageRole, NewConversation, NewMessage, NewUser, Principal, Role,
    Strata,
};

#[derive(Debug, Clone)]
enum Op {
    Append {
        conv: usize,
        batch: Vec<(String, Option<u8>)>,
    },
    List {
        conv: usize,
        after: i64,
        limit: i64,
    },
    Tail {
        conv: usize,
        before: Option<i64>,
        limit: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, prop::collection::vec(("[a-z]{1,6}", prop::option::of(0u8..6)), 1..4))
            .prop_map(|(conv, batch)| Op::Append { conv, batch }),
        1 => (0..2usize, 0..12i64, 1..6i64).prop_map(|(conv, after, limit)| Op::List { conv, after, limit }),
        1 => (0..2usize, prop::option::of(1..14i64), 1..6i64).prop_map(|(conv, before, limit)| Op::Tail { conv, before, limit }),
    ]
}

/// The model: per conversation, the messages (content, idempotency key) in seq order.
#[derive(Default)]
struct Model {
    convs: [Vec<(String, Option<String>)>; 2],
}

impl Model {
    /// Returns the seqs the append must answer with.
    fn append(&mut self, conv: usize, batch: &[(String, Option<String>)]) -> Vec<i64> {
        let mut seqs = Vec::new();
        for (content, key) in batch {
            let list = &mut self.convs[conv];
            if let Some(k) = key {
                if let Some(pos) = list.iter().position(|(_, kk)| kk.as_deref() == Some(k)) {
                    seqs.push(pos as i64 + 1);
                    continue;
                }
            }
            list.push((content.clone(), key.clone()));
            seqs.push(list.len() as i64);
        }
        seqs
    }
}

async fn setup(dir: &std::path::Path) -> (Strata, strata::BotScope) {
    let strata = Strata::open(Config::embedded(dir)).await.expect("open");
    strata
        .create_bot(&Principal::Admin, "model", "model")
        .await
        .expect("bot");
    let scope = strata
        .scope(&Principal::Admin, "model", Role::Writer)
        .await
        .expect("scope");
    scope
        .create_user(NewUser {
            id: Some("u".into()),
            ..Default::default()
        })
        .await
        .expect("user");
    for c in 0..2 {
        scope
            .create_conversation(NewConversation {
                id: Some(format!("c{c}")),
                user_id: "u".into(),
                ..Default::default()
            })
            .await
            .expect("conversation");
    }
    (strata, scope)
}

fn new_messages(batch: &[(String, Option<String>)]) -> Vec<NewMessage> {
    batch
        .iter()
        .map(|(content, key)| NewMessage {
            role: MessageRole::User,
            content: content.clone(),
            metadata: None,
            idempotency_key: key.clone(),
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn sequential_ops_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        runtime().block_on(async {
            let (strata, scope) = setup(dir.path()).await;
            let mut model = Model::default();
            for op in &ops {
                match op {
                    Op::Append { conv, batch } => {
                        let batch: Vec<_> = batch.iter().map(|(c, k)| (c.clone(), k.map(|k| format!("k{k}")))).collect();
                        let expected = model.append(*conv, &batch);
                        let got = scope.append_messages(&format!("c{conv}"), new_messages(&batch)).await.expect("append");
                        let seqs: Vec<i64> = got.iter().map(|a| a.message.seq).collect();
                        prop_assert_eq!(&seqs, &expected);
                        for a in &got {
                            let (content, _) = &model.convs[*conv][a.message.seq as usize - 1];
                            prop_assert_eq!(&a.message.content, content, "replay must return the original");
                        }
                    }
                    Op::List { conv, after, limit } => {
                        let page = scope
                            .list_messages(&format!("c{conv}"), &MessageQuery { after_seq: Some(*after), limit: Some(*limit), ..Default::default() })
                            .await
                            .expect("list");
                        let all = &model.convs[*conv];
                        let expected: Vec<i64> = (after + 1..=all.len() as i64).take(*limit as usize).collect();
                        let seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
                        prop_assert_eq!(&seqs, &expected);
                        let more = (*after + *limit) < all.len() as i64;
                        prop_assert_eq!(page.next_cursor.is_some(), more);
                        for m in &page.messages {
                            prop_assert_eq!(&m.content, &all[m.seq as usize - 1].0);
                        }
                    }
                    Op::Tail { conv, before, limit } => {
                        let page = scope
                            .list_messages(&format!("c{conv}"), &MessageQuery { before_seq: *before, latest: before.is_none(), limit: Some(*limit), ..Default::default() })
                            .await
                            .expect("tail");
                        let n = model.convs[*conv].len() as i64;
                        let end = before.map(|b| (b - 1).min(n)).unwrap_or(n);
                        let start = (end - limit + 1).max(1);
                        let expected: Vec<i64> = (start..=end).collect();
                        let seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
                        prop_assert_eq!(seqs, expected);
                    }
                }
            }
            strata.close().await;
            Ok(())
        })?;
    }

    #[test]
    fn concurrent_appenders_keep_seq_gap_free_and_keys_unique(
        plans in prop::collection::vec(prop::collection::vec(("[a-z]{1,4}", prop::option::of(0u8..8)), 1..12), 2..5)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        runtime().block_on(async {
            let (strata, scope) = setup(dir.path()).await;
            let mut tasks = Vec::new();
            for (w, plan) in plans.iter().enumerate() {
                let scope = scope.clone();
                let plan = plan.clone();
                tasks.push(tokio::spawn(async move {
                    let mut acks = Vec::new();
                    for (i, (content, key)) in plan.into_iter().enumerate() {
                        let content = format!("w{w}-{i}-{content}");
                        let key = key.map(|k| format!("k{k}"));
                        let got = scope
                            .append_messages("c0", new_messages(&[(content.clone(), key.clone())]))
                            .await
                            .expect("append");
                        acks.push((content, key, got[0].message.clone(), got[0].replayed));
                    }
                    acks
                }));
            }
            let mut acks = Vec::new();
            for t in tasks {
                acks.extend(t.await.expect("task"));
            }
            let stored = scope
                .list_messages("c0", &MessageQuery { limit: Some(1000), ..Default::default() })
                .await
                .expect("list")
                .messages;
            // seq is 1..=n.
            for (i, m) in stored.iter().enumerate() {
                prop_assert_eq!(m.seq, i as i64 + 1);
            }
            // Every acknowledged message is stored under its acknowledged seq and id.
            let by_seq: HashMap<i64, &strata::Message> = stored.iter().map(|m| (m.seq, m)).collect();
            for (_, _, msg, _) in &acks {
                let s = by_seq.get(&msg.seq).expect("acknowledged seq stored");
                prop_assert_eq!(&s.id, &msg.id);
            }
            // One stored message per idempotency key; every use got the original.
            let mut originals: BTreeMap<String, String> = BTreeMap::new();
            for m in &stored {
                if let Some(k) = &m.idempotency_key {
                    prop_assert!(originals.insert(k.clone(), m.id.clone()).is_none(), "key {} stored twice", k);
                }
            }
            for (_, key, msg, _) in &acks {
                if let Some(k) = key {
                    prop_assert_eq!(originals.get(k), Some(&msg.id));
                }
            }
            // Exactly the non-replayed appends were stored.
            let fresh = acks.iter().filter(|a| !a.3).count();
            prop_assert_eq!(stored.len(), fresh);
            strata.close().await;
            Ok(())
        })?;
    }
}
