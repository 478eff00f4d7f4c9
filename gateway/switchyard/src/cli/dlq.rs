//! `switchyard dlq`: a destination's or a topic's dead letters, listed,
//! shown one at a time (payload and attempts), replayed or purged.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Conn, call, cell, confirm, print_json, print_table};

#[derive(Args, Clone)]
pub struct DlqTarget {
    /// The destination whose DLQ to act on.
    #[arg(long, conflicts_with = "topic", required_unless_present = "topic")]
    destination: Option<String>,
    /// The topic whose DLQ (plugin failures) to act on.
    #[arg(long)]
    topic: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

impl DlqTarget {
    fn base(&self) -> String {
        match (&self.destination, &self.topic) {
            (Some(d), _) => self.conn.url(&format!("/v1/destinations/{d}/dlq")),
            (None, Some(t)) => self.conn.url(&format!("/v1/topics/{t}/dlq")),
            // clap requires one of the two; say so rather than panic.
            (None, None) => self.conn.url("/v1/destinations/-/dlq"),
        }
    }

    fn owner(&self) -> String {
        match (&self.destination, &self.topic) {
            (Some(d), _) => format!("destination {d:?}"),
            (None, Some(t)) => format!("topic {t:?}"),
            (None, None) => "?".to_owned(),
        }
    }
}

#[derive(Subcommand)]
pub enum DlqAction {
    /// Lists dead letters, oldest first.
    #[command(after_help = "Example:\n  switchyard dlq list --destination billing --limit 20")]
    List {
        #[command(flatten)]
        target: DlqTarget,
        /// How many entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one dead letter: its error, the event's payload and every attempt.
    #[command(
        after_help = "Example:\n  switchyard dlq show --destination billing 01JD6Z3Q8YQ2V8M7T4W1N0C5RK"
    )]
    Show {
        #[command(flatten)]
        target: DlqTarget,
        /// The event id of the dead letter.
        id: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-queues dead letters with a fresh attempt budget.
    #[command(
        after_help = "Example:\n  switchyard dlq replay --destination billing --since 2026-01-01T00:00:00Z"
    )]
    Replay {
        #[command(flatten)]
        target: DlqTarget,
        /// Only these event ids (default: all).
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Only entries dead-lettered at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only entries dead-lettered at or before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Deletes dead letters for good (asks first unless --yes).
    #[command(after_help = "Example:\n  switchyard dlq purge --destination billing --yes")]
    Purge {
        #[command(flatten)]
        target: DlqTarget,
        /// Only this event id (default: all).
        #[arg(long)]
        id: Option<String>,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long, short)]
        yes: bool,
    },
}

pub async fn run(action: DlqAction) -> anyhow::Result<()> {
    let target = match &action {
        DlqAction::List { target, .. }
        | DlqAction::Show { target, .. }
        | DlqAction::Replay { target, .. }
        | DlqAction::Purge { target, .. } => target,
    };
    let http = target.conn.client()?;
    match action {
        DlqAction::List {
            target,
            limit,
            json,
        } => {
            let body = call(http.get(target.base()).query(&[("limit", limit)])).await?;
            if json {
                return print_json(&body);
            }
            let entries = body["entries"].as_array().cloned().unwrap_or_default();
            println!("{} dead letters (showing {})", body["depth"], entries.len());
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        cell(&e["id"]),
                        cell(&e["dead_lettered_at"]),
                        cell(&e["attempts"]),
                        cell(&e["error"]),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                print_table(&["ID", "DEAD-LETTERED AT", "ATTEMPTS", "ERROR"], &rows);
            }
        }
        DlqAction::Show {
            target,
            id,
            json: as_json,
        } => {
            let body = call(
                http.get(format!("{}/{id}", target.base()))
                    .query(&[("include", "payload")]),
            )
            .await
            .with_context(|| format!("dead letter {id} of {}", target.owner()))?;
            if as_json {
                return print_json(&body);
            }
            println!("id:               {}", cell(&body["id"]));
            println!("dead-lettered at: {}", cell(&body["dead_lettered_at"]));
            println!("attempts:         {}", cell(&body["attempts"]));
            println!("error:            {}", cell(&body["error"]));
            super::ops::print_event(&body["event"]);
        }
        DlqAction::Replay {
            target,
            ids,
            since,
            until,
        } => {
            let base = target.base();
            // Explicit ids or a time range: one request. All: page through the
            // DLQ and replay a page at a time, so a long replay shows progress.
            if !ids.is_empty() || since.is_some() || until.is_some() {
                let body = call(http.post(format!("{base}/replay")).json(&json!({
                    "ids": ids, "since": since, "until": until,
                })))
                .await?;
                println!("replayed {}", body["replayed"]);
                return Ok(());
            }
            let first = call(http.get(&base).query(&[("limit", 1)])).await?;
            let total = first["depth"].as_u64().unwrap_or(0);
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} replayed ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let mut replayed = 0u64;
            loop {
                let page = call(http.get(&base).query(&[("limit", 500)])).await?;
                let ids: Vec<Value> = page["entries"]
                    .as_array()
                    .map(|es| es.iter().map(|e| e["id"].clone()).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    break;
                }
                let body = call(
                    http.post(format!("{base}/replay"))
                        .json(&json!({ "ids": ids })),
                )
                .await?;
                let n = body["replayed"].as_u64().unwrap_or(0);
                if n == 0 {
                    break;
                }
                replayed += n;
                bar.inc(n);
            }
            bar.finish_and_clear();
            println!("replayed {replayed}");
        }
        DlqAction::Purge { target, id, yes } => {
            let (url, what) = match &id {
                Some(id) => (
                    format!("{}/{id}", target.base()),
                    format!("delete dead letter {id} of {}", target.owner()),
                ),
                None => (
                    target.base(),
                    format!("delete every dead letter of {}", target.owner()),
                ),
            };
            confirm(&what, yes)?;
            let body = call(http.delete(url)).await?;
            println!("purged {}", body["purged"]);
        }
    }
    Ok(())
}
