//! Resolving a session is served from the cache while nothing changed.

use strata::{Config, NewUser, Principal, Role, Strata};

#[tokio::test(flavor = "multi_thread")]
async fn a_resolved_session_is_cached_until_it_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = Strata::open(Config::embedded(dir.path()))
        .await
        .expect("open");
    strata
        .create_bot(&Principal::Admin, "b", "b")
        .await
        .expect("bot");
    let scope = strata
        .scope(&Principal::Admin, "b", Role::Writer)
        .await
        .expect("scope");
    scope
        .create_user(NewUser {
            id: Some("u".into()),
            ..Default::default()
        })
        .await
        .expect("user");
    let (session, token) = scope
        .create_session("u", None, None)
        .await
        .expect("session");
    let first = scope.resolve_session(&token).await.expect("resolve");
    let hash = first.token_hash.clone();
    let cached = strata
        .cache()
        .get("b", &format!("sess:{hash}"))
        .await
        .expect("cache get");
    assert!(cached.is_some(), "the resolved session is in the cache");
    // The store's copy changes behind the cache's back (as another process
    // without this cache would): the cached entry keeps answering.
    strata
        .records()
        .revoke_session(&strata::BotId::parse("b").expect("id"), &session.id)
        .await
        .expect("revoke in store");
    assert!(
        scope.resolve_session(&token).await.is_ok(),
        "served from the cache"
    );
    // Through the facade a revocation is seen at once.
    let (session2, token2) = scope
        .create_session("u", None, None)
        .await
        .expect("session");
    scope.resolve_session(&token2).await.expect("resolve");
    scope.revoke_session(&session2.id).await.expect("revoke");
    assert!(
        scope.resolve_session(&token2).await.is_err(),
        "revoked through the facade: gone at once"
    );
    strata.close().await;
}
