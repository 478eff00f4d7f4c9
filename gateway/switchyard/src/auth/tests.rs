//! Config validation and access decisions of `auth`, without a socket; the
//! guards through a router with a faked peer address.

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use base64::Engine;
use prometheus_client::metrics::family::Family;
use tower::ServiceExt;

use super::*;

const ADMIN: &str = "admin-secret-0123456789";
const PUBLISHER: &str = "publisher-secret-0123456789";
const CONSUMER: &str = "consumer-secret-0123456789";

const BASE: &str = "[[destinations]]\nname = \"jobs\"\nkind = \"pull\"\n\
    [[destinations]]\nname = \"hook\"\nkind = \"log\"\n\
    [[topics]]\nname = \"orders\"\nroutes = [\"jobs\"]\nauth = \"token\"\n\
    [[topics]]\nname = \"open\"\nroutes = [\"hook\"]\n";

fn parse(text: &str) -> Result<Config, crate::config::ConfigError> {
    Config::parse(text, Path::new("test.toml"), Path::new("/base"))
}

fn with_tokens(tokens: &str) -> String {
    format!("{BASE}[auth]\ntokens = [{tokens}]\n")
}

fn config() -> Config {
    parse(&with_tokens(&format!(
        "{{ name = \"ops\", secret = \"{ADMIN}\", scopes = [\"admin\"] }},\
         {{ name = \"ci\", secret = \"{PUBLISHER}\", scopes = [\"publish:orders\"], rate_limit = \"2/s\" }},\
         {{ name = \"worker\", secret = \"{CONSUMER}\", scopes = [\"consume:*\"] }}"
    )))
    .unwrap()
}

fn auth(config: &Config) -> Auth {
    Auth::new(config, Family::default())
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn basic(user: &str, password: &str) -> HeaderMap {
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {raw}")).unwrap(),
    );
    h
}

fn remote() -> Option<SocketAddr> {
    Some("203.0.113.9:4000".parse().unwrap())
}

fn config_error(tokens: &str) -> String {
    parse(&with_tokens(tokens))
        .expect_err("invalid")
        .to_string()
}

#[test]
fn scope_references_are_checked_and_named_by_key() {
    let e = config_error(&format!(
        "{{ name = \"a\", secret = \"{ADMIN}\", scopes = [\"admin\", \"publish:ordres\"] }}"
    ));
    assert!(
        e.contains("auth.tokens[0].scopes[1]") && e.contains("\"ordres\""),
        "{e}"
    );
    let e = config_error(&format!(
        "{{ name = \"a\", secret = \"{ADMIN}\", scopes = [\"consume:ghost\"] }}"
    ));
    assert!(
        e.contains("auth.tokens[0].scopes[0]") && e.contains("ghost"),
        "{e}"
    );
    let e = config_error(&format!(
        "{{ name = \"a\", secret = \"{ADMIN}\", scopes = [\"consume:hook\"] }}"
    ));
    assert!(e.contains("not of kind \"pull\""), "{e}");
    let e = config_error(&format!(
        "{{ name = \"a\", secret = \"{ADMIN}\", scopes = [\"publish:orders\", \"superuser\"] }}"
    ));
    assert!(
        e.contains("auth.tokens[0].scopes[1]") && e.contains("unknown scope \"superuser\""),
        "{e}"
    );
    let e = config_error(&format!("{{ name = \"a\", secret = \"{ADMIN}\" }}"));
    assert!(e.contains("auth.tokens[0].scopes"), "{e}");
}

#[test]
fn duplicate_names_and_secrets_and_short_secrets_are_refused_without_echoing_them() {
    let e = config_error(&format!(
        "{{ name = \"a\", secret = \"{ADMIN}\", scopes = [\"admin\"] }},\
         {{ name = \"a\", secret = \"{PUBLISHER}\", scopes = [\"admin\"] }}"
    ));
    assert!(
        e.contains("auth.tokens[1].name") && e.contains("defined twice"),
        "{e}"
    );
    let e = config_error(&format!(
        "{{ name = \"a\", secret = \"{ADMIN}\", scopes = [\"admin\"] }},\
         {{ name = \"b\", secret = \"{ADMIN}\", scopes = [\"admin\"] }}"
    ));
    assert!(e.contains("auth.tokens[1].secret"), "{e}");
    assert!(!e.contains(ADMIN), "the secret leaked into {e}");
    let e = config_error("{ name = \"a\", secret = \"short\", scopes = [\"admin\"] }");
    assert!(
        e.contains("auth.tokens[0].secret") && e.contains("at least 16"),
        "{e}"
    );
    assert!(!e.contains("short\""), "{e}");
    let e = config_error("{ name = \"a\", secret = \"\", scopes = [\"admin\"] }");
    assert!(e.contains("empty"), "{e}");
    let e = config_error(
        "{ name = \"a\", secret = \"env:SWITCHYARD_AUTH_TEST_SURELY_UNSET\", scopes = [\"admin\"] }",
    );
    assert!(e.contains("SWITCHYARD_AUTH_TEST_SURELY_UNSET"), "{e}");
}

#[test]
fn a_token_topic_needs_a_token_that_can_publish_to_it() {
    let e = parse(BASE).expect_err("no tokens at all").to_string();
    assert!(e.contains("topics[0].auth") && e.contains("orders"), "{e}");
    let e = config_error(&format!(
        "{{ name = \"w\", secret = \"{CONSUMER}\", scopes = [\"consume:jobs\"] }}"
    ));
    assert!(e.contains("topics[0].auth"), "{e}");
    parse(&with_tokens(&format!(
        "{{ name = \"w\", secret = \"{CONSUMER}\", scopes = [\"publish:*\"] }}"
    )))
    .expect("a wildcard publisher is enough");
    let e = parse(&format!(
        "{BASE}[[topics]]\nname = \"x\"\nauth = \"closed\"\n"
    ))
    .expect_err("unknown auth mode")
    .to_string();
    assert!(e.contains("closed"), "{e}");
}

#[test]
fn debug_output_never_shows_a_secret() {
    let c = config();
    let shown = format!("{c:?} {:?}", auth(&c));
    for s in [ADMIN, PUBLISHER, CONSUMER] {
        assert!(!shown.contains(s), "secret in Debug output: {shown}");
    }
    assert!(shown.contains("inline"), "{shown}");
}

#[test]
fn bearer_and_basic_tokens_are_checked_against_scopes() {
    let c = config();
    let a = auth(&c);
    let local = Some("127.0.0.1:1".parse().unwrap());
    assert_eq!(
        a.check(&bearer(ADMIN), remote(), Need::Admin).unwrap(),
        "ops"
    );
    assert_eq!(
        a.check(&basic("anyone", ADMIN), remote(), Need::Admin)
            .unwrap(),
        "ops"
    );
    // Admin covers everything; wildcards cover every name.
    assert!(
        a.check(&bearer(ADMIN), None, Need::Publish("orders"))
            .is_ok()
    );
    assert!(
        a.check(&bearer(CONSUMER), None, Need::Consume("jobs"))
            .is_ok()
    );
    assert!(
        a.check(&bearer(CONSUMER), None, Need::Consume("other"))
            .is_ok()
    );
    assert_eq!(
        a.check(&bearer(PUBLISHER), None, Need::Admin),
        Err(Denied::Forbidden {
            token: "ci".into(),
            need: "admin".into()
        })
    );
    assert!(matches!(
        a.check(&bearer(CONSUMER), None, Need::Publish("orders")),
        Err(Denied::Forbidden { .. })
    ));
    // With tokens configured, loopback gets no free pass.
    assert_eq!(
        a.check(&HeaderMap::new(), local, Need::Admin),
        Err(Denied::Missing)
    );
    assert_eq!(
        a.check(&bearer("not-a-token-at-all"), local, Need::Admin),
        Err(Denied::Unknown)
    );
    // A prefix of a real token is not the token.
    assert_eq!(
        a.check(&bearer(&ADMIN[..ADMIN.len() - 1]), local, Need::Admin),
        Err(Denied::Unknown)
    );
    let mut weird = HeaderMap::new();
    weird.insert(header::AUTHORIZATION, HeaderValue::from_static("Digest x"));
    assert_eq!(a.check(&weird, local, Need::Admin), Err(Denied::Malformed));
    // `curl -u TOKEN:`: the token as the user name, no password.
    assert_eq!(
        a.check(&basic(ADMIN, ""), remote(), Need::Admin).unwrap(),
        "ops"
    );
    assert_eq!(
        a.check(&basic("user", ""), local, Need::Admin),
        Err(Denied::Unknown)
    );
    assert_eq!(
        a.check(&basic("", ""), local, Need::Admin),
        Err(Denied::Malformed)
    );
}

#[test]
fn a_token_over_its_rate_limit_is_told_when_to_retry() {
    let c = config();
    let a = auth(&c);
    // "2/s": a burst of two, then one every 500 ms.
    for _ in 0..2 {
        assert!(
            a.check(&bearer(PUBLISHER), None, Need::Publish("orders"))
                .is_ok()
        );
    }
    match a.check(&bearer(PUBLISHER), None, Need::Publish("orders")) {
        Err(Denied::RateLimited {
            token,
            retry_after,
            rate,
        }) => {
            assert_eq!(token, "ci");
            assert_eq!(retry_after, 1, "500 ms rounds up to 1 s");
            assert_eq!(rate, "2/s");
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    // Other tokens are not affected.
    assert!(a.check(&bearer(ADMIN), None, Need::Admin).is_ok());
}

#[test]
fn without_tokens_only_loopback_peers_pass() {
    let c = parse("").unwrap();
    let a = auth(&c);
    for ok in [
        "127.0.0.1:5",
        "127.8.9.10:5",
        "[::1]:5",
        "[::ffff:127.0.0.1]:5",
    ] {
        assert!(
            a.check(&HeaderMap::new(), Some(ok.parse().unwrap()), Need::Admin)
                .is_ok(),
            "{ok}"
        );
    }
    for bad in [
        "10.0.0.1:5",
        "[::ffff:10.0.0.1]:5",
        "[2001:db8::1]:5",
        "0.0.0.0:5",
    ] {
        assert!(
            matches!(
                a.check(&bearer(ADMIN), Some(bad.parse().unwrap()), Need::Admin),
                Err(Denied::NotLoopback { .. })
            ),
            "{bad}"
        );
    }
    // No connect info at all: treated as remote.
    assert!(a.check(&HeaderMap::new(), None, Need::Admin).is_err());
}

/// The gateway's real router (no socket, nothing running), with the peer
/// address faked by `MockConnectInfo` (a test machine may have no
/// non-loopback interface). The temp dir holds its store.
async fn guarded_router(config: &Config, peer: SocketAddr) -> (tempfile::TempDir, axum::Router) {
    let (dir, router) = crate::run::test_router(config.clone()).await;
    (dir, router.layer(MockConnectInfo(peer)))
}

/// The guard let the request through: whatever the handler said, it was
/// not an access refusal.
fn passed(s: StatusCode) -> bool {
    !matches!(s.as_u16(), 401 | 403 | 429)
}

async fn status(router: &axum::Router, method: &str, uri: &str) -> (StatusCode, String) {
    let resp = router
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn without_tokens_remote_peers_get_403_on_guarded_routes_only() {
    let c = parse(
        "[[destinations]]\nname = \"jobs\"\nkind = \"pull\"\n[[topics]]\nname = \"t\"\nroutes = [\"jobs\"]\n",
    )
    .unwrap();
    let (_dir, far) = guarded_router(&c, "198.51.100.7:40000".parse().unwrap()).await;
    let (s, body) = status(&far, "GET", "/v1/destinations").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        body.contains("loopback") && body.contains("198.51.100.7"),
        "{body}"
    );
    assert_eq!(status(&far, "POST", "/v1/queues/jobs/receive").await.0, 403);
    let (s, body) = status(&far, "POST", "/registry/subjects/x/versions").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body.contains("\"error_code\":40301"), "{body}");
    // Reads and health stay open to everyone.
    assert_eq!(status(&far, "GET", "/registry/subjects").await.0, 200);
    let (s, body) = status(&far, "GET", "/registry/subjects/x/versions").await;
    assert!(passed(s) && body.contains("40401"), "{s} {body}");
    assert_eq!(status(&far, "GET", "/healthz").await.0, 200);

    let (_d2, mapped) = guarded_router(&c, "[::ffff:127.0.0.1]:40000".parse().unwrap()).await;
    assert_eq!(status(&mapped, "GET", "/v1/destinations").await.0, 200);
    let (s, body) = status(&mapped, "POST", "/registry/subjects/x/versions").await;
    assert!(passed(s), "{s} {body}");
    let (_d3, v6) = guarded_router(&c, "[::1]:40000".parse().unwrap()).await;
    assert_eq!(status(&v6, "POST", "/v1/queues/jobs/receive").await.0, 200);
}

#[tokio::test]
async fn registry_refusals_over_the_rate_limit_keep_confluents_shape() {
    let c = parse(&with_tokens(&format!(
        "{{ name = \"ops\", secret = \"{ADMIN}\", scopes = [\"admin\", \"publish:*\"], rate_limit = \"1/m\" }}"
    )))
    .unwrap();
    let (_dir, router) = guarded_router(&c, "127.0.0.1:1".parse().unwrap()).await;
    let send = || {
        router.clone().oneshot(
            Request::builder()
                .method("POST")
                .uri("/registry/subjects/x/versions")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
    };
    let first = send().await.unwrap().status();
    assert!(passed(first), "{first}");
    let resp = send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&retry), "{retry}");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error_code"], 42901, "{v}");
}
