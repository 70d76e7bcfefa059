//! The records layer's behaviour suite: every backend of
//! [`RecordStore`](strata_core::records::RecordStore) must pass it.
//!
//! Each behaviour is a `pub async fn` that takes `&dyn RecordStore`, creates
//! its own bots (unique ids), and panics with a message naming the broken
//! rule. [`for_each_behavior!`] lists every behaviour once, so a backend's
//! tests make one test per behaviour (see `tests/behavior.rs`); the
//! PostgreSQL backend will run the same.

use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_core::page::PageRequest;
use strata_core::records::RecordStore;
use strata_core::types::*;
use strata_core::{ErrorKind, Timestamp};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh bot id, unique within the process and across runs.
pub fn unique_bot(tag: &str) -> BotId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    BotId::parse(&format!("{tag}-{n}-{nanos}")).expect("valid generated bot id")
}

async fn bot_with_user(s: &dyn RecordStore, tag: &str) -> (BotId, User) {
    let bot = unique_bot(tag);
    s.create_bot(&bot, tag).await.expect("create bot");
    let user = s
        .create_user(
            &bot,
            &NewUser {
                id: Some("u1".into()),
                ..Default::default()
            },
        )
        .await
        .expect("create user");
    (bot, user)
}

fn msg(content: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        role: MessageRole::User,
        content: content.into(),
        metadata: None,
        idempotency_key: key.map(str::to_owned),
    }
}

/// Calls `$callback! { behavior, behavior, … }` with the name of every
/// behaviour in this module, so a test file can generate one test per
/// (backend, behaviour). `for_each_behavior!(callback, args…)` passes the
/// extra arguments first: `$callback! { args… ; behavior, … }` (for example
/// the backend to open).
#[doc(hidden)]
#[macro_export]
macro_rules! __records_for_each_behavior {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            $($($args)* ;)?
            bots_crud_and_cascade,
            keys_are_found_by_id_and_revoked,
            users_and_external_ids,
            sessions_slide_expire_and_revoke,
            messages_seq_idempotency_and_ranges,
            presets_groups_tool_logs,
            config_replace_merge_and_values,
            tenants_never_see_each_other,
            pagination_visits_every_row_once,
            audit_and_meta,
        }
    };
}
#[doc(inline)]
pub use crate::__records_for_each_behavior as for_each_behavior;

/// Bots: create, duplicate, get, rename, delete with everything they own.
pub async fn bots_crud_and_cascade(s: &dyn RecordStore) {
    let (bot, user) = bot_with_user(s, "bots").await;
    let dup = s
        .create_bot(&bot, "again")
        .await
        .expect_err("duplicate bot id");
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        s.update_bot(&bot, "renamed").await.expect("rename").name,
        "renamed"
    );
    let conv = s
        .create_conversation(
            &bot,
            &NewConversation {
                user_id: user.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("conversation");
    s.append_messages(&bot, &conv.id, &[msg("hi", None)])
        .await
        .expect("append");
    s.set_config_value(&bot, "lang", &json!("en"))
        .await
        .expect("config");
    let key = ApiKey {
        id: new_id().replace('-', ""),
        bot_id: bot.clone(),
        name: "app".into(),
        role: Role::Writer,
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    s.create_key(&key, "hash").await.expect("key");
    // A live bot is never purged.
    assert_eq!(
        s.purge_bot_rows(&bot).await.expect_err("live").kind(),
        ErrorKind::Conflict
    );
    s.delete_bot(&bot).await.expect("delete bot");
    // Gone at once: not found, not listed, not renamable; its keys revoked;
    // its id taken until the purge ends; its purge queued.
    assert_eq!(
        s.get_bot(&bot).await.expect_err("gone").kind(),
        ErrorKind::NotFound
    );
    assert!(!s
        .list_bots(&PageRequest::default())
        .await
        .expect("list bots")
        .items
        .iter()
        .any(|b| b.id == bot));
    assert_eq!(
        s.update_bot(&bot, "x").await.expect_err("rename").kind(),
        ErrorKind::NotFound
    );
    assert!(s
        .find_key(&key.id)
        .await
        .expect("find key")
        .is_some_and(|k| k.key.revoked_at.is_some()));
    let reuse = s.create_bot(&bot, "too early").await.expect_err("purging");
    assert_eq!(
        (reuse.kind(), reuse.code()),
        (ErrorKind::Conflict, "bot_deleting")
    );
    assert_eq!(
        s.delete_bot(&bot).await.expect_err("twice").kind(),
        ErrorKind::NotFound
    );
    assert!(s
        .bots_to_purge()
        .await
        .expect("purges")
        .iter()
        .any(|(b, _)| *b == bot));
    // The purge removes every row; running it again is harmless.
    s.purge_bot_rows(&bot).await.expect("purge");
    s.purge_bot_rows(&bot).await.expect("purge again");
    assert!(!s
        .bots_to_purge()
        .await
        .expect("purges")
        .iter()
        .any(|(b, _)| *b == bot));
    assert_eq!(
        s.get_user(&bot, &user.id)
            .await
            .expect_err("user gone")
            .kind(),
        ErrorKind::NotFound
    );
    assert!(
        s.get_config(&bot).await.expect("config read").is_empty(),
        "config must go with the bot"
    );
    assert!(s.find_key(&key.id).await.expect("find key").is_none());
    // The id can be reused and starts empty.
    s.create_bot(&bot, "new").await.expect("recreate");
    assert!(s
        .list_users(&bot, &PageRequest::default())
        .await
        .expect("list")
        .items
        .is_empty());
}

/// Keys: stored with their hash, found by id, revocation is idempotent.
pub async fn keys_are_found_by_id_and_revoked(s: &dyn RecordStore) {
    let (bot, _) = bot_with_user(s, "keys").await;
    let key = ApiKey {
        id: new_id().replace('-', ""),
        bot_id: bot.clone(),
        name: "app".into(),
        role: Role::Writer,
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    s.create_key(&key, "abc123").await.expect("create key");
    let found = s.find_key(&key.id).await.expect("find").expect("present");
    assert_eq!(found.secret_hash, "abc123");
    assert_eq!(found.key.role, Role::Writer);
    assert!(s.find_key("nope").await.expect("find").is_none());
    let other = unique_bot("keys-other");
    s.create_bot(&other, "o").await.expect("bot");
    assert_eq!(
        s.revoke_key(&other, &key.id)
            .await
            .expect_err("other bot")
            .kind(),
        ErrorKind::NotFound
    );
    let r1 = s.revoke_key(&bot, &key.id).await.expect("revoke");
    let r2 = s.revoke_key(&bot, &key.id).await.expect("revoke twice");
    assert!(r1.revoked_at.is_some());
    assert_eq!(
        r1.revoked_at, r2.revoked_at,
        "revoking twice keeps the first time"
    );
    let ghost = ApiKey {
        id: "x".repeat(32),
        bot_id: unique_bot("nobot"),
        ..key
    };
    assert_eq!(
        s.create_key(&ghost, "h").await.expect_err("no bot").kind(),
        ErrorKind::NotFound
    );
}

/// Users: client ids, unique external ids, patch keeps absent fields, delete cascades.
pub async fn users_and_external_ids(s: &dyn RecordStore) {
    let (bot, u1) = bot_with_user(s, "users").await;
    let u2 = s
        .create_user(
            &bot,
            &NewUser {
                external_id: Some("ext-1".into()),
                name: Some("Bo".into()),
                ..Default::default()
            },
        )
        .await
        .expect("user 2");
    let dup = s
        .create_user(
            &bot,
            &NewUser {
                external_id: Some("ext-1".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("duplicate external id");
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists);
    let patched = s
        .update_user(
            &bot,
            &u2.id,
            &UserPatch {
                settings: Some(json!({"tz": "UTC"})),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!(
        patched.name.as_deref(),
        Some("Bo"),
        "absent fields are kept"
    );
    assert_eq!(patched.settings, json!({"tz": "UTC"}));
    let conv = s
        .create_conversation(
            &bot,
            &NewConversation {
                user_id: u1.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("conversation");
    s.delete_user(&bot, &u1.id).await.expect("delete user");
    assert_eq!(
        s.get_conversation(&bot, &conv.id)
            .await
            .expect_err("cascade")
            .kind(),
        ErrorKind::NotFound
    );
    let missing = s
        .create_conversation(
            &bot,
            &NewConversation {
                user_id: "ghost".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("unknown user");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

/// Sessions: resolve slides the expiry; expired and revoked sessions are gone.
pub async fn sessions_slide_expire_and_revoke(s: &dyn RecordStore) {
    let (bot, user) = bot_with_user(s, "sessions").await;
    let created = s
        .create_session(
            &bot,
            &NewSession {
                user_id: user.id.clone(),
                token_hash: format!("tok-{}", new_id()),
                ttl_seconds: 60,
                state: json!({}),
            },
        )
        .await
        .expect("session");
    let hash = format!("tok2-{}", new_id());
    let sess = s
        .create_session(
            &bot,
            &NewSession {
                user_id: user.id.clone(),
                token_hash: hash.clone(),
                ttl_seconds: 60,
                state: json!({"step": 1}),
            },
        )
        .await
        .expect("session 2");
    let later = Timestamp::from_millis(sess.created_at.as_millis() + 30_000);
    let slid = s
        .resolve_session(&bot, &hash, later)
        .await
        .expect("resolve");
    assert_eq!(
        slid.expires_at.as_millis(),
        later.as_millis() + 60_000,
        "resolve slides the expiry"
    );
    let after_expiry = Timestamp::from_millis(later.as_millis() + 61_000);
    assert_eq!(
        s.resolve_session(&bot, &hash, after_expiry)
            .await
            .expect_err("expired")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.get_session(&bot, &sess.id, after_expiry)
            .await
            .expect_err("expired")
            .kind(),
        ErrorKind::NotFound
    );
    let st = s
        .update_session_state(&bot, &created.id, &json!({"a": 1}), Timestamp::now())
        .await
        .expect("state");
    assert_eq!(st.state, json!({"a": 1}));
    s.revoke_session(&bot, &created.id).await.expect("revoke");
    assert_eq!(
        s.get_session(&bot, &created.id, Timestamp::now())
            .await
            .expect_err("revoked")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.revoke_session(&bot, &created.id)
            .await
            .expect_err("twice")
            .kind(),
        ErrorKind::NotFound
    );
    let purged = s
        .purge_expired_sessions(Timestamp::from_millis(i64::MAX / 2))
        .await
        .expect("purge");
    assert!(purged >= 2, "expired and revoked sessions are purged");
}

/// Messages: seq is 1..n, idempotency keys replay, ranges and tails.
pub async fn messages_seq_idempotency_and_ranges(s: &dyn RecordStore) {
    let (bot, user) = bot_with_user(s, "messages").await;
    let conv = s
        .create_conversation(
            &bot,
            &NewConversation {
                user_id: user.id.clone(),
                title: Some("t".into()),
                ..Default::default()
            },
        )
        .await
        .expect("conversation");
    let first = s
        .append_messages(
            &bot,
            &conv.id,
            &[msg("a", Some("k1")), msg("b", None), msg("dup", Some("k1"))],
        )
        .await
        .expect("append");
    assert_eq!(
        first.iter().map(|a| a.message.seq).collect::<Vec<_>>(),
        vec![1, 2, 1]
    );
    assert_eq!(
        first.iter().map(|a| a.replayed).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    assert_eq!(
        first[2].message.content, "a",
        "a replay returns the original"
    );
    for i in 0..8 {
        s.append_messages(&bot, &conv.id, &[msg(&format!("m{i}"), None)])
            .await
            .expect("append");
    }
    assert_eq!(
        s.get_conversation(&bot, &conv.id)
            .await
            .expect("conv")
            .last_seq,
        10
    );
    let (page, more) = s
        .list_messages(
            &bot,
            &conv.id,
            &MessageRange {
                after_seq: 2,
                before_seq: None,
                limit: 3,
            },
        )
        .await
        .expect("range");
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(more);
    let (tail, more) = s
        .list_messages(
            &bot,
            &conv.id,
            &MessageRange {
                after_seq: 0,
                before_seq: Some(i64::MAX),
                limit: 4,
            },
        )
        .await
        .expect("tail");
    assert_eq!(
        tail.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![7, 8, 9, 10],
        "tail in seq order"
    );
    assert!(more);
    let missing = s
        .append_messages(&bot, "nope", &[msg("x", None)])
        .await
        .expect_err("missing conversation");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let missing = s
        .list_messages(
            &bot,
            "nope",
            &MessageRange {
                after_seq: 0,
                before_seq: None,
                limit: 10,
            },
        )
        .await
        .expect_err("missing conversation");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    s.delete_conversation(&bot, &conv.id).await.expect("delete");
    assert_eq!(
        s.get_conversation(&bot, &conv.id)
            .await
            .expect_err("gone")
            .kind(),
        ErrorKind::NotFound
    );
}

/// Presets, groups and tool logs round-trip.
pub async fn presets_groups_tool_logs(s: &dyn RecordStore) {
    let (bot, user) = bot_with_user(s, "misc").await;
    let p = s
        .create_preset(
            &bot,
            &PresetFields {
                name: "p".into(),
                model: Some("m".into()),
                params: Some(json!({"t": 0.2})),
                ..Default::default()
            },
        )
        .await
        .expect("preset");
    let p2 = s
        .replace_preset(
            &bot,
            &p.id,
            &PresetFields {
                name: "p2".into(),
                ..Default::default()
            },
        )
        .await
        .expect("replace");
    assert_eq!(p2.name, "p2");
    assert_eq!(p2.model, None, "replace is a full replace");
    assert_eq!(s.get_preset(&bot, &p.id).await.expect("get").name, "p2");
    s.delete_preset(&bot, &p.id).await.expect("delete");
    assert_eq!(
        s.get_preset(&bot, &p.id).await.expect_err("gone").kind(),
        ErrorKind::NotFound
    );

    let g = s
        .create_group(
            &bot,
            &GroupFields {
                name: "g".into(),
                settings: None,
            },
        )
        .await
        .expect("group");
    assert_eq!(g.settings, json!({}));
    s.replace_group(
        &bot,
        &g.id,
        &GroupFields {
            name: "g2".into(),
            settings: Some(json!({"x": 1})),
        },
    )
    .await
    .expect("replace group");
    assert_eq!(
        s.list_groups(&bot, &PageRequest::default())
            .await
            .expect("list")
            .items[0]
            .name,
        "g2"
    );
    s.delete_group(&bot, &g.id).await.expect("delete group");

    let conv = s
        .create_conversation(
            &bot,
            &NewConversation {
                user_id: user.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("conversation");
    for (i, c) in [Some(conv.id.clone()), None].into_iter().enumerate() {
        s.create_tool_log(
            &bot,
            &NewToolLog {
                conversation_id: c,
                tool: format!("t{i}"),
                input: json!({"q": i}),
                output: None,
                status: "ok".into(),
                duration_ms: Some(5),
            },
        )
        .await
        .expect("tool log");
    }
    let all = s
        .list_tool_logs(&bot, None, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(all.items.len(), 2);
    let one = s
        .list_tool_logs(&bot, Some(&conv.id), &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].input, json!({"q": 0}));
}

/// Config: replace is total, merge keeps other keys, values are JSON.
pub async fn config_replace_merge_and_values(s: &dyn RecordStore) {
    let (bot, _) = bot_with_user(s, "config").await;
    let m = |pairs: &[(&str, serde_json::Value)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    s.replace_config(&bot, &m(&[("a", json!(1)), ("b", json!("x"))]))
        .await
        .expect("replace");
    s.merge_config(&bot, &m(&[("b", json!("y")), ("c", json!([1]))]))
        .await
        .expect("merge");
    assert_eq!(
        s.get_config(&bot).await.expect("get"),
        m(&[("a", json!(1)), ("b", json!("y")), ("c", json!([1]))])
    );
    s.replace_config(&bot, &m(&[("z", json!(null))]))
        .await
        .expect("replace");
    assert_eq!(
        s.get_config(&bot).await.expect("get"),
        m(&[("z", json!(null))])
    );
    assert_eq!(
        s.get_config_value(&bot, "z").await.expect("value"),
        json!(null)
    );
    assert_eq!(
        s.get_config_value(&bot, "a")
            .await
            .expect_err("gone")
            .kind(),
        ErrorKind::NotFound
    );
    s.delete_config_value(&bot, "z").await.expect("delete");
    assert_eq!(
        s.delete_config_value(&bot, "z")
            .await
            .expect_err("twice")
            .kind(),
        ErrorKind::NotFound
    );
}

/// Bot A's rows are invisible under bot B.
pub async fn tenants_never_see_each_other(s: &dyn RecordStore) {
    let (a, ua) = bot_with_user(s, "tenant-a").await;
    let (b, _) = bot_with_user(s, "tenant-b").await;
    let conv = s
        .create_conversation(
            &a,
            &NewConversation {
                id: Some("shared-id".into()),
                user_id: ua.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("conversation");
    s.append_messages(&a, &conv.id, &[msg("secret", None)])
        .await
        .expect("append");
    assert_eq!(
        s.get_conversation(&b, &conv.id)
            .await
            .expect_err("b")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.append_messages(&b, &conv.id, &[msg("x", None)])
            .await
            .expect_err("b")
            .kind(),
        ErrorKind::NotFound
    );
    let r = MessageRange {
        after_seq: 0,
        before_seq: None,
        limit: 10,
    };
    assert_eq!(
        s.list_messages(&b, &conv.id, &r)
            .await
            .expect_err("b")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.delete_user(&b, &ua.id).await.map(|_| ()).ok(),
        Some(()),
        "b's own u1 exists and is b's"
    );
    assert!(
        s.get_user(&a, &ua.id).await.is_ok(),
        "deleting b's user must not touch a's"
    );
    assert!(s
        .list_conversations(&b, None, &PageRequest::default())
        .await
        .expect("list")
        .items
        .is_empty());
    assert_eq!(
        s.list_messages(&a, &conv.id, &r).await.expect("a").0.len(),
        1
    );
}

/// Paging through a list visits every row once, in id order.
pub async fn pagination_visits_every_row_once(s: &dyn RecordStore) {
    let bot = unique_bot("pages");
    s.create_bot(&bot, "p").await.expect("bot");
    for i in 0..23 {
        s.create_user(
            &bot,
            &NewUser {
                id: Some(format!("user-{i:02}")),
                ..Default::default()
            },
        )
        .await
        .expect("user");
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let p = s.list_users(&bot, &page).await.expect("page");
        assert!(p.items.len() <= 5);
        seen.extend(p.items.into_iter().map(|u| u.id));
        match p.next_cursor {
            Some(c) => {
                page = PageRequest {
                    cursor: Some(c),
                    limit: 5,
                }
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|i| format!("user-{i:02}")).collect();
    assert_eq!(seen, expected);
}

/// Audit events outlive their bot; meta keys are set once.
pub async fn audit_and_meta(s: &dyn RecordStore) {
    let bot = unique_bot("audit");
    s.create_bot(&bot, "a").await.expect("bot");
    let event = AuditEvent {
        id: new_id(),
        bot_id: Some(bot.clone()),
        actor: "admin".into(),
        action: "bot.delete".into(),
        target: bot.to_string(),
        details: json!({}),
        created_at: Timestamp::now(),
    };
    s.record_audit(&event).await.expect("audit");
    s.delete_bot(&bot).await.expect("delete");
    let listed = s
        .list_audit(Some(&bot), &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items, vec![event], "audit events survive the bot");
    let key = format!("meta-{}", new_id());
    assert_eq!(s.get_meta(&key).await.expect("get"), None);
    assert_eq!(s.set_meta_if_absent(&key, "one").await.expect("set"), "one");
    assert_eq!(
        s.set_meta_if_absent(&key, "two").await.expect("set again"),
        "one",
        "first value wins"
    );
    assert_eq!(s.get_meta(&key).await.expect("get").as_deref(), Some("one"));
}
