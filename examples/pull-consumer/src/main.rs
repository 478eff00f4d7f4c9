//! A pull consumer for a Switchyard `kind = "pull"` destination.
//!
//! Run with:
//!
//! ```sh
//! cargo run -p pull-consumer -- --server http://127.0.0.1:8080 --queue jobs
//! ```
//!
//! It long-polls for up to 10 messages at a time, "processes" each (prints
//! it), and acknowledges the batch. A message it fails to process is nacked
//! so another consumer can try it after a short delay. On Ctrl-C (or
//! SIGTERM) it stops receiving, finishes and acks what it holds, and exits:
//! nothing is lost, and anything it never acked simply becomes visible to
//! other consumers when its visibility timeout ends.
//!
//! `--max N` exits after N messages (used by the tests). When the gateway
//! has `[auth]` tokens, pass one with `consume:QUEUE` as `--token` or in
//! `SWITCHYARD_TOKEN`; it is sent as `Authorization: Bearer`.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Message {
    id: String,
    receipt: String,
    attempt: u32,
    content_type: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

struct Args {
    server: String,
    queue: String,
    max: Option<usize>,
    token: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut server = "http://127.0.0.1:8080".to_owned();
    let mut queue = None;
    let mut max = None;
    let mut token = std::env::var("SWITCHYARD_TOKEN").ok();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--server" => server = it.next().context("--server needs a URL")?,
            "--queue" => queue = Some(it.next().context("--queue needs a name")?),
            "--max" => max = Some(it.next().context("--max needs a number")?.parse()?),
            "--token" => token = Some(it.next().context("--token needs a token")?),
            other => {
                bail!(
                    "unknown argument {other:?}; usage: --server URL --queue NAME [--max N] [--token TOKEN]"
                )
            }
        }
    }
    Ok(Args {
        server: server.trim_end_matches('/').to_owned(),
        queue: queue.context("--queue NAME is required")?,
        max,
        token: token.filter(|t| !t.is_empty()),
    })
}

/// Your work goes here. Returning an error nacks the message.
fn process(m: &Message) -> anyhow::Result<()> {
    let body = m.body.as_deref().or(m.body_base64.as_deref()).unwrap_or("");
    println!(
        "{} (attempt {}, {}): {body}",
        m.id, m.attempt, m.content_type
    );
    Ok(())
}

async fn call(http: &reqwest::Client, url: String, body: Value) -> anyhow::Result<Value> {
    let resp = http.post(&url).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url}: {status}: {}", v["error"]["message"]);
    }
    Ok(v)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &args.token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("--token must be printable ASCII")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()?;
    let base = format!("{}/v1/queues/{}", args.server, args.queue);
    let mut done = 0usize;
    let mut stop = Box::pin(tokio::signal::ctrl_c());
    loop {
        if args.max.is_some_and(|m| done >= m) {
            break;
        }
        // Long-poll, but stop waiting the moment a shutdown is asked for.
        let received = tokio::select! {
            r = call(&http, format!("{base}/receive"), json!({"max_messages": 10, "wait_seconds": 5})) => r?,
            _ = &mut stop => break,
        };
        let messages: Vec<Message> = serde_json::from_value(received["messages"].clone())?;
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for m in &messages {
            match process(m) {
                Ok(()) => ok.push(m.receipt.clone()),
                Err(e) => {
                    eprintln!("{}: {e}; handing it back", m.id);
                    failed.push(m.receipt.clone());
                }
            }
        }
        if !ok.is_empty() {
            let r = call(&http, format!("{base}/ack"), json!({ "receipts": ok })).await?;
            for res in r["results"].as_array().into_iter().flatten() {
                if res["ok"] != true {
                    eprintln!("ack refused: {}", res["error"]);
                }
            }
        }
        if !failed.is_empty() {
            call(
                &http,
                format!("{base}/nack"),
                json!({ "receipts": failed, "delay_seconds": 5 }),
            )
            .await?;
        }
        done += ok.len();
    }
    eprintln!("stopped after {done} messages");
    Ok(())
}
