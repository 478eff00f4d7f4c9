//! Connecting, checking the server, and creating (or verifying) every
//! stream and consumer with its config read back.
//!
//! A server that silently drops a setting it does not know (an older one,
//! or `jetstream.strict` off) would change what a 202 means or how a queue
//! behaves without a word. So every object is created with the exact
//! config, then read back, and each field Switchyard set must come back
//! unchanged: a missing or different field is a start-up error naming it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::js::{Js, JsError, code};
use crate::names::Names;
use crate::{Error, JetStreamConfig};

/// The oldest server with everything the backend relies on: atomic batch
/// publish, scheduled messages and per-message TTL (2.12).
pub(crate) const MIN_SERVER: (u64, u64) = (2, 12);

/// How long a message may wait between a write and its retry and still be
/// deduplicated by its Msg-Id.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Live pull leases and push attempts one band consumer holds at most.
pub(crate) const MAX_ACK_PENDING: i64 = 10_000;

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

pub(crate) async fn connect(cfg: &JetStreamConfig) -> Result<async_nats::Client, Error> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("switchyard")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(cfg.request_timeout))
        .retry_on_initial_connect();
    if let Some(t) = &cfg.token {
        opts = opts.token(t.expose().to_string());
    }
    if let Some(u) = &cfg.user {
        let p = cfg
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        opts = opts.user_and_password(u.clone(), p);
    }
    if let Some(f) = &cfg.creds_file {
        opts = opts
            .credentials_file(f)
            .await
            .map_err(|e| Error::Config(format!("store.creds_file {}: {e}", f.display())))?;
    }
    if let Some(tls) = &cfg.tls {
        opts = opts.require_tls(true);
        if let Some(ca) = &tls.ca_file {
            opts = opts.add_root_certificates(ca.clone());
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(c), Some(k)) => opts = opts.add_client_certificate(c.clone(), k.clone()),
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "store.tls: client_cert and client_key go together; set both or neither".into(),
                ));
            }
        }
    }
    let servers: Vec<async_nats::ServerAddr> = cfg
        .servers
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| Error::Config(format!("store.servers: {s:?} is not a NATS URL: {e}")))
        })
        .collect::<Result<_, _>>()?;
    // `retry_on_initial_connect` makes connect return at once and keep
    // trying in the background: wait for the first connection here, with a
    // bound, so a wrong address is an error at start and not a hang.
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| Error::Connect(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + cfg.connect_timeout;
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Connect(format!(
                "no server of {:?} answered within {:?}; check store.servers and that nats-server runs with JetStream",
                cfg.servers, cfg.connect_timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(client)
}

/// The server's version and JetStream account, checked before anything is
/// created.
pub(crate) async fn check_server(js: &Js) -> Result<String, Error> {
    let info = js.client.server_info();
    let version = info.version.clone();
    let parsed: Vec<u64> = version
        .split(['.', '-', '+'])
        .take(2)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let (major, minor) = (
        parsed.first().copied().unwrap_or(0),
        parsed.get(1).copied().unwrap_or(0),
    );
    if (major, minor) < MIN_SERVER {
        return Err(Error::Server(format!(
            "nats-server {version} is too old: the JetStream backend needs {}.{} or newer (atomic batch publish, scheduled messages, per-message TTL)",
            MIN_SERVER.0, MIN_SERVER.1
        )));
    }
    match js.api("INFO", &Value::Null).await {
        Ok(_) => Ok(version),
        Err(JsError::Api { description, .. }) => Err(Error::Server(format!(
            "JetStream is not available to this account on nats-server {version}: {description}; enable jetstream in the server config"
        ))),
        Err(e) => Err(Error::Server(format!("JetStream did not answer: {e}"))),
    }
}

/// Every field of `want` must be in `got` with the same value (objects
/// compared field by field, so what the server adds is ignored).
fn compare(path: &str, want: &Value, got: Option<&Value>, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Some(Value::Object(g))) => {
            for (k, v) in w {
                compare(&format!("{path}.{k}"), v, g.get(k), out);
            }
        }
        (w, Some(g)) if w == g => {}
        (Value::Number(w), Some(Value::Number(g))) if w.as_f64() == g.as_f64() => {}
        (w, None) => out.push(format!(
            "{path}: the server did not keep {w} (it reads back as absent)"
        )),
        (w, Some(g)) => out.push(format!("{path}: set to {w}, the server has {g}")),
    }
}

fn unkept(what: &str, diffs: Vec<String>) -> Error {
    Error::Server(format!(
        "{what}: {}; nats-server {}.{} or newer is needed, with jetstream.strict on (the default), or the object was created by something else with another config",
        diffs.join("; "),
        MIN_SERVER.0,
        MIN_SERVER.1
    ))
}

/// Creates a stream, or finds it with the same config; reads it back.
async fn stream(js: &Js, config: Value) -> Result<(), Error> {
    let name = config["name"].as_str().expect("a name").to_string();
    let got = match js
        .api_settling(&format!("STREAM.CREATE.{name}"), &config)
        .await
    {
        Ok(v) => v,
        Err(e) if e.is(code::STREAM_NAME_IN_USE) => js
            .api_settling(&format!("STREAM.INFO.{name}"), &Value::Null)
            .await
            .map_err(|e| Error::Server(format!("stream {name}: {e}")))?,
        Err(e) => return Err(Error::Server(format!("cannot create stream {name}: {e}"))),
    };
    let mut diffs = Vec::new();
    for (k, v) in config.as_object().expect("an object") {
        compare(k, v, got["config"].get(k), &mut diffs);
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(unkept(&format!("stream {name}"), diffs))
    }
}

/// Creates a durable pull consumer, or finds it with the same config.
pub(crate) async fn consumer(js: &Js, stream: &str, config: Value) -> Result<(), JsError> {
    let name = config["durable_name"].as_str().expect("a name").to_string();
    let body = json!({ "stream_name": stream, "config": config, "action": "create" });
    let got = match js
        .api_settling(&format!("CONSUMER.CREATE.{stream}.{name}"), &body)
        .await
    {
        Ok(v) => v,
        Err(e) if e.is(code::CONSUMER_EXISTS) => {
            // Made by an earlier start with other settings (a changed
            // store.ack_wait, say): those it may change are updated.
            let update = json!({ "stream_name": stream, "config": config, "action": "update" });
            match js
                .api_settling(&format!("CONSUMER.CREATE.{stream}.{name}"), &update)
                .await
            {
                Ok(v) => v,
                Err(_) => {
                    js.api_settling(&format!("CONSUMER.INFO.{stream}.{name}"), &Value::Null)
                        .await?
                }
            }
        }
        Err(e) => return Err(e),
    };
    let mut diffs = Vec::new();
    for (k, v) in config.as_object().expect("an object") {
        compare(k, v, got["config"].get(k), &mut diffs);
    }
    // Left from an earlier config that pinned it, a policy would change how
    // every pull is served.
    if config.get("priority_policy").is_none()
        && let Some(p) = got["config"]["priority_policy"]
            .as_str()
            .filter(|p| *p != "none")
    {
        diffs.push(format!(
            "priority_policy: not set, the server has {p:?} (an update to remove it was refused)"
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(JsError::Protocol(format!(
            "consumer {stream}/{name}: {}",
            diffs.join("; ")
        )))
    }
}

pub(crate) fn band_consumer(names: &Names, dest: &str, p: u8, ack_wait: Duration) -> Value {
    json!({
        "durable_name": names.band_consumer(dest, p),
        "filter_subject": names.band_subject(dest, p),
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": nanos(ack_wait),
        "max_deliver": -1,
        "max_ack_pending": MAX_ACK_PENDING,
        "replay_policy": "instant",
    })
}

/// Creates or verifies the four streams and the route consumer.
pub(crate) async fn objects(js: &Js, names: &Names, cfg: &JetStreamConfig) -> Result<(), Error> {
    let replicas = cfg.replicas;
    let common = |name: String, subjects: Vec<String>| {
        json!({
            "name": name,
            "subjects": subjects,
            "storage": "file",
            "num_replicas": replicas,
            "allow_direct": true,
            "allow_atomic": true,
            "duplicate_window": nanos(DUPLICATE_WINDOW),
        })
    };
    let mut ev = common(names.events(), names.events_filter().to_vec());
    ev["retention"] = json!("limits");
    stream(js, ev).await?;

    let mut q = common(names.queues(), names.queues_subjects());
    q["retention"] = json!("workqueue");
    q["allow_msg_ttl"] = json!(true);
    q["allow_msg_schedules"] = json!(true);
    q["allow_rollup_hdrs"] = json!(true);
    stream(js, q).await?;

    let mut st = common(names.state(), vec![names.state_subjects()]);
    st["retention"] = json!("limits");
    st["max_msgs_per_subject"] = json!(1);
    st["allow_msg_ttl"] = json!(true);
    st["allow_rollup_hdrs"] = json!(true);
    stream(js, st).await?;

    let mut reg = common(names.registry(), vec![names.registry_subjects()]);
    reg["retention"] = json!("limits");
    reg["max_msgs_per_subject"] = json!(1);
    reg["allow_rollup_hdrs"] = json!(true);
    stream(js, reg).await?;

    route_consumer(js, names, cfg.ack_wait, cfg.pins_routing()).await
}

/// The priority group every router's pull names.
pub(crate) const ROUTE_GROUP: &str = "route";

/// How long past `ack_wait` a pinned router that stopped pulling keeps its
/// pin: by then what it held unacknowledged is due again, and is handed
/// out before anything newer, so the next router takes up the order where
/// the old one left it.
const PIN_SLACK: Duration = Duration::from_secs(5);

/// Creates the route consumer, or updates it: `pinned`, one gateway at a
/// time routes (the server's `pinned_client` policy), which keeps the
/// routing order of the events of one ordering key whichever gateway
/// accepted them; otherwise every gateway routes a share.
pub(crate) async fn route_consumer(
    js: &Js,
    names: &Names,
    ack_wait: Duration,
    pinned: bool,
) -> Result<(), Error> {
    let mut route = json!({
        "durable_name": names.route_consumer(),
        "filter_subjects": names.events_filter(),
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": nanos(ack_wait),
        "max_deliver": -1,
        "max_ack_pending": 20_000,
        "replay_policy": "instant",
    });
    if pinned {
        route["priority_policy"] = json!("pinned_client");
        route["priority_groups"] = json!([ROUTE_GROUP]);
        route["priority_timeout"] = json!(nanos(ack_wait + PIN_SLACK));
    }
    consumer(js, &names.events(), route)
        .await
        .map_err(|e| Error::Server(format!("the route consumer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_the_server_dropped_or_changed_is_named() {
        let want =
            json!({"name": "S", "allow_atomic": true, "duplicate_window": 600u64, "sub": {"a": 1}});
        let got =
            json!({"name": "S", "duplicate_window": 600.0, "sub": {"a": 2, "b": 3}, "extra": 1});
        let mut diffs = Vec::new();
        for (k, v) in want.as_object().expect("an object") {
            compare(k, v, got.get(k), &mut diffs);
        }
        assert_eq!(
            diffs,
            vec![
                "allow_atomic: the server did not keep true (it reads back as absent)".to_string(),
                "sub.a: set to 1, the server has 2".to_string(),
            ]
        );
    }
}
