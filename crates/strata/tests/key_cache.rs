//! Authentication serves known bot keys from the verified-key cache, and a
//! revocation through the facade still stops a key at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strata::{BotId, Config, ErrorKind, Principal, Role, Strata};

async fn open_with_bot(dir: &std::path::Path) -> Strata {
    let strata = Strata::open(Config::embedded(dir)).await.expect("open");
    strata
        .create_bot(&Principal::Admin, "b", "b")
        .await
        .expect("bot");
    strata
}

async fn new_key(strata: &Strata, role: Role) -> (String, String) {
    let scope = strata
        .scope(&Principal::Admin, "b", Role::Admin)
        .await
        .expect("scope");
    let (key, token) = scope.create_key("k", role).await.expect("key");
    (key.id, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_key_is_served_without_the_store_and_revocation_is_immediate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = open_with_bot(dir.path()).await;
    let (id, token) = new_key(&strata, Role::Writer).await;
    let who = strata.authenticate(Some(&token)).await.expect("auth");
    assert_eq!(
        who,
        Principal::Bot {
            bot: BotId::parse("b").expect("id"),
            role: Role::Writer,
            key_id: id.clone(),
        }
    );
    // The store's row changes behind the facade's back: the verified key
    // keeps answering, so the store is not read per request.
    strata
        .records()
        .revoke_key(&BotId::parse("b").expect("id"), &id)
        .await
        .expect("revoke in store");
    assert!(
        strata.authenticate(Some(&token)).await.is_ok(),
        "served from the verified-key cache"
    );
    // The same key id with another secret is refused, cached or not.
    let (prefix, _) = token.rsplit_once('_').expect("sk_<id>_<secret>");
    let forged = format!("{prefix}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        strata
            .authenticate(Some(&forged))
            .await
            .map_err(|e| e.kind()),
        Err(ErrorKind::Unauthorized)
    );

    // Through the facade a revocation is seen at once.
    let (id2, token2) = new_key(&strata, Role::Reader).await;
    strata.authenticate(Some(&token2)).await.expect("auth");
    let admin = strata
        .scope(&Principal::Admin, "b", Role::Admin)
        .await
        .expect("scope");
    admin.revoke_key(&id2).await.expect("revoke");
    assert_eq!(
        strata
            .authenticate(Some(&token2))
            .await
            .map_err(|e| e.kind()),
        Err(ErrorKind::Unauthorized),
        "revoked through the facade: refused at once"
    );
    // The key revoked behind the facade's back is refused too now: the
    // revocation dropped every verified key.
    assert!(strata.authenticate(Some(&token)).await.is_err());

    // Deleting the bot stops its keys at once.
    let (_, token3) = new_key(&strata, Role::Admin).await;
    strata.authenticate(Some(&token3)).await.expect("auth");
    strata
        .delete_bot(&Principal::Admin, "b")
        .await
        .expect("delete bot");
    assert_eq!(
        strata
            .authenticate(Some(&token3))
            .await
            .map_err(|e| e.kind()),
        Err(ErrorKind::Unauthorized),
        "a deleted bot's key is refused at once"
    );
    strata.close().await;
}

/// Authentications racing with a revocation: once `revoke_key` returned,
/// no authentication that starts afterwards succeeds, whatever the racing
/// ones left in the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_authentication_succeeds_after_a_concurrent_revocation_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = open_with_bot(dir.path()).await;
    let admin = strata
        .scope(&Principal::Admin, "b", Role::Admin)
        .await
        .expect("scope");
    for round in 0..20 {
        let (id, token) = new_key(&strata, Role::Writer).await;
        let revoked = Arc::new(AtomicBool::new(false));
        let mut racers = Vec::new();
        for _ in 0..4 {
            let (strata, token, revoked) = (strata.clone(), token.clone(), revoked.clone());
            racers.push(tokio::spawn(async move {
                let mut late_successes = 0u32;
                for _ in 0..200 {
                    // Read the flag before starting: a success is wrong only
                    // for an authentication that began after the revocation
                    // returned.
                    let after = revoked.load(Ordering::SeqCst);
                    if strata.authenticate(Some(&token)).await.is_ok() && after {
                        late_successes += 1;
                    }
                    tokio::task::yield_now().await;
                }
                late_successes
            }));
        }
        tokio::task::yield_now().await;
        admin.revoke_key(&id).await.expect("revoke");
        revoked.store(true, Ordering::SeqCst);
        for r in racers {
            assert_eq!(
                r.await.expect("racer"),
                0,
                "round {round}: a revoked key authenticated"
            );
        }
        assert!(strata.authenticate(Some(&token)).await.is_err());
    }
    strata.close().await;
}
