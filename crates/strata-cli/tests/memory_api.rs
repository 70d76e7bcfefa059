//! Conversation memory end to end against the real binary: a bot with
//! `memory.enabled` remembers its user and assistant messages (earlier ones
//! too), finds them by meaning, optionally per user, conversation or role,
//! forgets a deleted conversation, survives SIGKILL right after messages are
//! acknowledged, and refuses bad searches without changing anything. Without
//! an embedder, search says so.

mod common;

use common::{Server, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn send(s: &Server, m: Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s.req(m, path, Some(key));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn user(s: &Server, key: &str, bot: &str, name: &str) -> String {
    let v = s
        .post_ok(
            &format!("/v1/bots/{bot}/users"),
            key,
            json!({ "name": name }),
        )
        .await;
    v["id"].as_str().expect("user id").to_owned()
}

async fn conversation(s: &Server, key: &str, bot: &str, user: &str) -> String {
    let v = s
        .post_ok(
            &format!("/v1/bots/{bot}/conversations"),
            key,
            json!({ "user_id": user }),
        )
        .await;
    v["id"].as_str().expect("conversation id").to_owned()
}

async fn say(s: &Server, key: &str, bot: &str, conv: &str, messages: &[(&str, &str)]) {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    s.post_ok(
        &format!("/v1/bots/{bot}/conversations/{conv}/messages"),
        key,
        json!({ "messages": messages }),
    )
    .await;
}

async fn enable(s: &Server, bot: &str) {
    let (st, v) = send(
        s,
        Method::PUT,
        &format!("/v1/bots/{bot}/config/memory.enabled"),
        ADMIN_KEY,
        Some(json!(true)),
    )
    .await;
    assert!((200..300).contains(&st), "enable memory: {st} {v}");
}

/// Waits until nothing is queued and `indexed` messages are remembered.
async fn settle(s: &Server, key: &str, bot: &str, indexed: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = s.get_ok(&format!("/v1/bots/{bot}/memory"), key).await;
        if v["pending"] == 0 && v["indexed"] == indexed {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "memory did not settle at {indexed} messages: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn search(s: &Server, key: &str, bot: &str, body: Value) -> (u16, Value) {
    send(
        s,
        Method::POST,
        &format!("/v1/bots/{bot}/memory/search"),
        key,
        Some(body),
    )
    .await
}

fn results(v: &Value) -> Vec<Value> {
    v["results"].as_array().cloned().unwrap_or_default()
}

fn contents(v: &Value) -> Vec<String> {
    results(v)
        .iter()
        .map(|r| r["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

const DOG: &str = "I adopted a golden retriever puppy called Biscuit last spring.";
const PEANUTS: &str = "Please remember that I am allergic to peanuts when you suggest restaurants.";
const FLIGHT: &str = "My flight to Lisbon leaves early on Friday morning.";

#[tokio::test(flavor = "multi_thread")]
async fn memory_remembers_messages_by_meaning() {
    let Some(model) = strata_testkit::backend(
        "STRATA_TEST_MODEL_DIR",
        "memory_remembers_messages_by_meaning",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let embedder = format!("local:{model}");
    let env = [("STRATA_EMBEDDER", embedder.as_str())];
    let mut s = Server::start_with(&data, &env).await;
    let bot = "mem";
    let key = s.bot_with_key(bot, "writer").await;
    let reader = s.key(bot, "reader").await;
    let alice = user(&s, &key, bot, "Alice").await;
    let bob = user(&s, &key, bot, "Bob").await;
    let alice_pets = conversation(&s, &key, bot, &alice).await;
    let alice_books = conversation(&s, &key, bot, &alice).await;
    let bob_travel = conversation(&s, &key, bot, &bob).await;

    // Before memory is switched on: remembered once it is (backfill).
    say(
        &s,
        &key,
        bot,
        &alice_pets,
        &[
            ("system", "You are a helpful assistant."),
            ("user", DOG),
            (
                "assistant",
                "Congratulations! Puppies need lots of sleep and short walks.",
            ),
        ],
    )
    .await;
    let v = s.get_ok(&format!("/v1/bots/{bot}/memory"), &key).await;
    assert_eq!(v["enabled"], false, "{v}");
    assert_eq!(v["indexed"], 0, "{v}");

    enable(&s, bot).await;
    say(
        &s,
        &key,
        bot,
        &bob_travel,
        &[
            ("user", FLIGHT),
            (
                "assistant",
                "Noted. Arrive at the airport two hours before departure.",
            ),
            ("user", PEANUTS),
            ("tool", "{\"restaurants\": []}"),
        ],
    )
    .await;
    say(
        &s,
        &key,
        bot,
        &alice_books,
        &[(
            "user",
            "Can you recommend a good book about the history of ancient Rome?",
        )],
    )
    .await;
    // 2 backfilled + 3 + 1; the system and tool messages are not remembered.
    let status = settle(&s, &key, bot, 6).await;
    assert_eq!(status["enabled"], true);

    // By meaning, across users.
    let (st, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "What kind of pet does the user own?", "k": 3 }),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let top = &results(&v)[0];
    assert_eq!(top["content"], DOG, "{v}");
    assert_eq!(top["user_id"], alice.as_str());
    assert_eq!(top["conversation_id"], alice_pets.as_str());
    assert_eq!(top["role"], "user");
    assert_eq!(top["seq"], 2);
    assert!(top["message_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(top["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let scores: Vec<f64> = results(&v)
        .iter()
        .map(|r| r["score"].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // One user's memory only.
    let (st, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "food allergies", "k": 10, "user_id": bob }),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(contents(&v)[0], PEANUTS, "{v}");
    assert!(
        results(&v).iter().all(|r| r["user_id"] == bob.as_str()),
        "{v}"
    );
    assert!(!contents(&v).iter().any(|c| c == DOG), "{v}");

    // One role, one conversation.
    let (_, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "travel plans", "k": 10, "role": "assistant" }),
    )
    .await;
    assert!(!results(&v).is_empty());
    assert!(results(&v).iter().all(|r| r["role"] == "assistant"), "{v}");
    let (_, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "anything", "k": 10, "conversation_id": alice_books }),
    )
    .await;
    assert_eq!(results(&v).len(), 1, "{v}");
    // A threshold above every score leaves nothing.
    let (_, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "dog", "k": 10, "min_score": 0.999 }),
    )
    .await;
    assert!(results(&v).is_empty(), "{v}");

    // Bad searches: 400 problem+json, nothing changes.
    for (body, code) in [
        (json!({ "query": "dog", "k": 0 }), "invalid_k"),
        (json!({ "query": "dog", "k": 101 }), "invalid_k"),
        (json!({ "query": "   " }), "invalid_query"),
        (json!({ "query": "x".repeat(5000) }), "invalid_query"),
        (json!({ "query": "dog", "role": "system" }), "invalid_role"),
        (json!({ "query": "dog", "limit": 3 }), "invalid_input"),
        (json!({ "k": 3 }), "invalid_input"),
    ] {
        let (st, v) = search(&s, &reader, bot, body.clone()).await;
        assert_eq!(st, 400, "{body} -> {v}");
        assert_eq!(v["code"], code, "{body} -> {v}");
    }
    // Readers cannot forget or re-index.
    let (st, _) = send(
        &s,
        Method::DELETE,
        &format!("/v1/bots/{bot}/memory"),
        &reader,
        None,
    )
    .await;
    assert_eq!(st, 403);
    settle(&s, &key, bot, 6).await;

    // A deleted conversation is forgotten.
    let (st, _) = send(
        &s,
        Method::DELETE,
        &format!("/v1/bots/{bot}/conversations/{alice_pets}"),
        &key,
        None,
    )
    .await;
    assert!((200..300).contains(&st));
    settle(&s, &key, bot, 4).await;
    let (_, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "What kind of pet does the user own?", "k": 10 }),
    )
    .await;
    assert!(
        results(&v)
            .iter()
            .all(|r| r["conversation_id"] != alice_pets.as_str()),
        "{v}"
    );

    // Acknowledged messages survive a SIGKILL that comes before they were
    // embedded: the queue is written with them. Batches of 40 reminders until
    // the memory reports a non-empty queue, so the kill finds work to lose.
    const BATCH: usize = 40;
    const MAX_REMINDERS: usize = 400;
    let mut reminders = 0;
    let pending = loop {
        let batch: Vec<String> = (reminders..reminders + BATCH)
            .map(|i| format!("Reminder number {i}: water the tomato plants on the balcony."))
            .collect();
        let pairs: Vec<(&str, &str)> = batch.iter().map(|t| ("user", t.as_str())).collect();
        say(&s, &key, bot, &bob_travel, &pairs).await;
        reminders += BATCH;
        let v = s.get_ok(&format!("/v1/bots/{bot}/memory"), &key).await;
        let pending = v["pending"].as_u64().expect("pending");
        if pending > 0 {
            break pending;
        }
        assert!(
            reminders < MAX_REMINDERS,
            "all {reminders} reminders were embedded as fast as they were said: nothing in flight to kill ({v})"
        );
    };
    s.kill();
    eprintln!("killed with {pending} of {reminders} reminders still queued");
    // The 4 remembered before, and every reminder.
    let remembered = 4 + reminders as u64;
    let s = Server::start_with(&data, &env).await;
    settle(&s, &key, bot, remembered).await;
    let (_, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "gardening chores", "k": 5, "user_id": bob }),
    )
    .await;
    assert!(contents(&v).iter().all(|c| c.contains("tomato")), "{v}");

    // Forget everything; new messages are remembered again.
    let (st, _) = send(
        &s,
        Method::DELETE,
        &format!("/v1/bots/{bot}/memory"),
        &key,
        None,
    )
    .await;
    assert_eq!(st, 204);
    settle(&s, &key, bot, 0).await;
    let (_, v) = search(&s, &reader, bot, json!({ "query": "flight" })).await;
    assert!(results(&v).is_empty(), "{v}");
    let (st, v) = send(
        &s,
        Method::POST,
        &format!("/v1/bots/{bot}/memory/reindex"),
        &key,
        None,
    )
    .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["queued"], remembered, "{v}");
    settle(&s, &key, bot, remembered).await;
    let (_, v) = search(
        &s,
        &reader,
        bot,
        json!({ "query": "flight to Portugal", "k": 1 }),
    )
    .await;
    assert_eq!(contents(&v), vec![FLIGHT.to_owned()], "{v}");

    // Another bot's messages are not remembered unless it switches memory on.
    let other_key = s.bot_with_key("quiet", "writer").await;
    let u = user(&s, &other_key, "quiet", "Carol").await;
    let c = conversation(&s, &other_key, "quiet", &u).await;
    say(&s, &other_key, "quiet", &c, &[("user", DOG)]).await;
    let v = s.get_ok("/v1/bots/quiet/memory", &other_key).await;
    assert_eq!(
        (
            v["enabled"].clone(),
            v["pending"].clone(),
            v["indexed"].clone()
        ),
        (json!(false), json!(0), json!(0))
    );
    let (st, v) = search(&s, &other_key, "quiet", json!({ "query": "dog" })).await;
    assert_eq!(st, 200);
    assert!(results(&v).is_empty(), "{v}");
}

#[tokio::test]
async fn without_an_embedder_memory_search_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data")).await;
    let key = s.bot_with_key("plain", "writer").await;
    enable(&s, "plain").await;
    let u = user(&s, &key, "plain", "Dan").await;
    let c = conversation(&s, &key, "plain", &u).await;
    say(&s, &key, "plain", &c, &[("user", "hello there")]).await;
    let (st, v) = search(&s, &key, "plain", json!({ "query": "hello" })).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["code"], "no_embedder");
    // The queue does not grow without bound: the worker drops what it
    // cannot embed.
    let v = settle(&s, &key, "plain", 0).await;
    assert_eq!(v["enabled"], true);
    let (st, v) = send(
        &s,
        Method::POST,
        "/v1/bots/plain/memory/reindex",
        &key,
        None,
    )
    .await;
    assert_eq!(st, 202, "{v}");
    // Switched off, then on again with values as a CSV row would give them.
    for (value, on) in [
        (json!(false), false),
        (json!("True"), true),
        (json!("no"), false),
        (json!("YES"), true),
    ] {
        let (st, v) = send(
            &s,
            Method::PUT,
            "/v1/bots/plain/config/memory.enabled",
            ADMIN_KEY,
            Some(value.clone()),
        )
        .await;
        assert!((200..300).contains(&st), "{st} {v}");
        let v = s.get_ok("/v1/bots/plain/memory", &key).await;
        assert_eq!(v["enabled"], on, "{value} -> {v}");
    }
}
