//! `docs/openapi.json` cannot drift from the code: it is a valid OpenAPI
//! 3.1 document by the reference validator (`openapi-spec-validator`, run
//! with `SWITCHYARD_PYTHON`), the gateway serves exactly it at
//! `GET /openapi.json`, every route the router declares is in it, and every
//! operation in it is served.
//!
//! The router's routes come from its definitions: every `.route("path",
//! get(..).post(..))` in the files that build routers, with the registry's
//! nested under `/registry`. A `.route("` anywhere else in the crate (unit
//! tests aside) fails the test, so a new router file cannot be missed.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic};
use switchyard_tests::{Gateway, client, python, workspace};

/// The files that declare routes, and the prefix each one's routes are
/// served under (where `http_router` nests them).
const ROUTER_FILES: &[(&str, &str)] = &[
    ("gateway/switchyard/src/http/mod.rs", ""),
    ("gateway/switchyard/src/admin/mod.rs", ""),
    ("gateway/switchyard/src/admin/queues.rs", ""),
    ("gateway/switchyard/src/console/mod.rs", ""),
    ("gateway/switchyard/src/registry_api/mod.rs", "/registry"),
];

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "head", "options"];

/// `(METHOD, path)` for every `.route(` call in `src`, paths in OpenAPI's
/// template syntax (axum's `{*rest}` becomes `{rest}`).
fn declared_routes(src: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let args = rest.trim_start();
        let Some(args) = args.strip_prefix('"') else {
            continue; // not a router's route (e.g. `store.route(routed)`)
        };
        let end = args.find('"').expect("a closed path literal");
        let path = &args[..end];
        let full = match (prefix, path) {
            ("", p) => p.to_owned(),
            (pre, "/") => pre.to_owned(),
            (pre, p) => format!("{pre}{p}"),
        };
        let full = full.replace("{*", "{");
        // The method router: identifiers called at the call's top level
        // (`get(h).delete(h2)`), skipping closures' insides and strings.
        let body = &args[end + 1..];
        let mut depth = 1usize;
        let mut ident = String::new();
        let mut in_str = false;
        let mut methods = Vec::new();
        for c in body.chars() {
            if in_str {
                if c == '"' {
                    in_str = false;
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '(' | '{' | '[' => {
                    if depth == 1 && METHODS.contains(&ident.as_str()) {
                        methods.push(ident.to_uppercase());
                    }
                    depth += 1;
                }
                ')' | '}' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            if c.is_alphanumeric() || c == '_' {
                ident.push(c);
            } else {
                ident.clear();
            }
        }
        assert!(!methods.is_empty(), "no method found for route {full}");
        out.extend(methods.into_iter().map(|m| (m, full.clone())));
    }
    out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn router_routes() -> BTreeSet<(String, String)> {
    let root = workspace();
    // A route declared outside the known files would escape the check.
    let mut files = Vec::new();
    rust_files(&root.join("gateway/switchyard/src"), &mut files);
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        // Unit tests build routers of their own; the gateway never serves them.
        if rel.ends_with("/tests.rs") || rel.contains("/tests/") {
            continue;
        }
        let src = std::fs::read_to_string(&f).unwrap();
        let declares = src.replace(char::is_whitespace, "").contains(".route(\"");
        if declares {
            assert!(
                ROUTER_FILES.iter().any(|(known, _)| *known == rel),
                "{rel} declares routes: add it to ROUTER_FILES in openapi.rs (with its prefix)"
            );
        }
        if src.contains("nest_service(") || src.contains(".nest(") {
            assert_eq!(
                rel, "gateway/switchyard/src/http/mod.rs",
                "a nested router outside http_router: give its file a prefix in ROUTER_FILES"
            );
        }
    }
    let mut out = BTreeSet::new();
    for (file, prefix) in ROUTER_FILES {
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        let routes = declared_routes(&src, prefix);
        assert!(!routes.is_empty(), "{file} declares no routes any more");
        out.extend(routes);
    }
    out
}

fn document() -> Value {
    let text = std::fs::read_to_string(workspace().join("docs/openapi.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_parser_reads_route_definitions_as_written() {
    let src = r#"Router::new()
        .route("/a/{id}", get(h))
        .route(
            "/b",
            get(|| async { Json(json!({"x": post(1)})) }).put(p).delete(d),
        )
        .route_layer(layer)
        .route("/c/{*rest}", post(|Path(p): Path<String>| async move { asset(&p) }))"#;
    let got = declared_routes(src, "/pre");
    let want: Vec<(String, String)> = [
        ("GET", "/pre/a/{id}"),
        ("GET", "/pre/b"),
        ("PUT", "/pre/b"),
        ("DELETE", "/pre/b"),
        ("POST", "/pre/c/{rest}"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(declared_routes(r#"self.store.route(routed)"#, ""), vec![]);
}

#[test]
fn every_route_is_documented_and_every_documented_route_declared() {
    let declared = router_routes();
    let documented = documented_routes(&document());
    let missing: Vec<_> = declared.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "routes served but not in docs/openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "operations in docs/openapi.json the router does not declare: {extra:?}"
    );
    // Sanity: the families the issue names are all there.
    for p in [
        "/v1/topics/{topic}/events",
        "/v1/queues/{name}/receive",
        "/registry/subjects/{subject}/versions",
        "/v1/stats/series",
        "/metrics",
        "/healthz",
        "/openapi.json",
    ] {
        assert!(documented.iter().any(|(_, d)| d == p), "{p} not documented");
    }
}

#[test]
fn the_document_passes_the_reference_validator() {
    let out = std::process::Command::new(python())
        .args(["-m", "openapi_spec_validator"])
        .arg(workspace().join("docs/openapi.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused docs/openapi.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(document()["openapi"], "3.1.0");
}

/// A concrete path for a template, with values the handlers can parse.
fn concrete(path: &str) -> String {
    path.replace("{topic}", "orders")
        .replace("{name}", "jobs")
        .replace("{id}", "01JAAAAAAAAAAAAAAAAAAAAAAA")
        .replace("{subject}", "s")
        .replace("{version}", "1")
        .replace("{path}", "app.js")
}

#[tokio::test]
async fn the_gateway_serves_the_document_and_every_operation_in_it() {
    let gw = Gateway::start(
        &Config::new()
            .destination(Destination::pull("jobs"))
            .topic(Topic::new("orders").routes(["jobs"]))
            .build(),
    )
    .await;
    let resp = client().get(gw.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, document(), "the binary serves another document");

    // Each documented operation reaches a handler: neither the router's
    // fallback (404 `not_found`, or the registry's 404 with code 404) nor a
    // 405. The registry's real 404s carry 404xx codes; the API's name what
    // is unknown.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in documented_routes(&served) {
        let url = gw.url(&concrete(&path));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = c
            .request(m, &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        if status == 404 {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_ne!(v["error"]["code"], "not_found", "{method} {path}: {body}");
            assert_ne!(v["error_code"], 404, "{method} {path}: {body}");
        }
    }
    gw.stop().await;
}
