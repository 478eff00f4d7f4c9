//! The operator commands: thin clients of the running gateway's HTTP API.
//!
//! - this file: the connection flags every client command shares
//!   ([`Conn`]), the one HTTP call helper, tables, and the confirmation a
//!   destructive command asks for;
//! - `dlq`: dead-letter queues (list, show, replay, purge);
//! - `migrate`: a single node's data dir moved into a JetStream cluster
//!   (the one command here that opens stores itself);
//! - `ops`: `status`, `destinations`, `events`, `publish`;
//! - `plugin`: `plugin check|test`, which need no gateway.

pub mod dlq;
pub mod migrate;
pub mod ops;
pub mod plugin;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

/// Where the gateway is and how to prove the caller may use its admin API.
#[derive(Args, Clone, Debug)]
pub struct Conn {
    /// The gateway's base URL.
    #[arg(
        long,
        visible_alias = "url",
        default_value = "http://127.0.0.1:8080",
        env = "SWITCHYARD_SERVER"
    )]
    pub server: String,
    /// An API token with the `admin` scope, sent as `Authorization: Bearer`.
    /// Needed when the gateway has `[auth]` tokens (or from another machine).
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Conn {
    /// `path` (starting with `/`) on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    /// An HTTP client that sends the token on every request.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .context("--token: the token must be printable ASCII")?;
            // Keeps the token out of reqwest's Debug output.
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .default_headers(headers)
            .build()?)
    }
}

/// Sends a request and returns the JSON answer, or an error that says what
/// the gateway answered (and, for a 401, how to pass a token).
pub async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await.context("cannot reach the gateway")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the gateway answered {status}: {msg} (pass --token or set SWITCHYARD_TOKEN)");
        }
        bail!("the gateway answered {status}: {msg}");
    }
    Ok(body)
}

/// Prints `value` as pretty JSON (the `--json` output).
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a destructive command asks before it acts. With `--yes` it goes
/// ahead; on a terminal it asks; without a terminal it refuses with exit
/// code 2 and never reads stdin, so a script cannot hang on a prompt.
pub fn confirm(what: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        eprintln!("error: refusing to {what} without confirmation: pass --yes to confirm");
        std::process::exit(2);
    }
    eprint!("About to {what}. Type 'yes' to go on: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed: nothing was changed");
    }
    Ok(())
}
