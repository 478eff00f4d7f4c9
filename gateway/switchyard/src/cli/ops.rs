//! Daily operator commands: `status` (every destination's levels, once or
//! refreshed with `--watch`), `destinations pause|resume|purge`, `events
//! list|show|tail|cancel` and `publish`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{Conn, call, cell, confirm, print_json, print_table};

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
    /// Refresh every this often (e.g. 2s) until interrupted.
    #[arg(long, num_args = 0..=1, default_missing_value = "2s", value_parser = humantime::parse_duration)]
    watch: Option<Duration>,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let http = args.conn.client()?;
    loop {
        let mut body = call(http.get(args.conn.url("/v1/destinations"))).await?;
        let events = call(http.get(args.conn.url("/v1/operator/events"))).await?;
        let events = events["events"].as_array().cloned().unwrap_or_default();
        if args.json {
            body["operator_events"] = Value::Array(events);
            print_json(&body)?;
        } else {
            if args.watch.is_some() {
                // Clear the screen and go home, like `watch` does.
                print!("\x1b[2J\x1b[H");
            }
            let rows: Vec<Vec<String>> = body["destinations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    // Paused by the gateway itself (410 Gone, disable_after)
                    // when its last pause was an operator event.
                    let auto = events.iter().any(|e| {
                        e["kind"] == "destination_paused" && e["destination"] == d["name"]
                    });
                    let paused = match (d["paused"] == true, auto) {
                        (true, true) => "yes (auto)",
                        (true, false) => "yes",
                        (false, _) => "no",
                    };
                    vec![
                        cell(&d["name"]),
                        cell(&d["kind"]),
                        cell(&d["queue_depth"]),
                        format!(
                            "{:.1}s",
                            d["oldest_pending_age_seconds"].as_f64().unwrap_or(0.0)
                        ),
                        cell(&d["in_flight"]),
                        cell(&d["dlq_depth"]),
                        paused.to_owned(),
                        cell(&d["circuit"]),
                    ]
                })
                .collect();
            print_table(
                &[
                    "DESTINATION",
                    "KIND",
                    "DEPTH",
                    "LAG",
                    "IN FLIGHT",
                    "DLQ",
                    "PAUSED",
                    "CIRCUIT",
                ],
                &rows,
            );
            if !events.is_empty() {
                println!("\nRecent operator events (newest first):");
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .take(10)
                    .map(|e| {
                        vec![
                            cell(&e["at"]),
                            cell(&e["kind"]),
                            cell(&e["destination"]),
                            cell(&e["reason"]),
                        ]
                    })
                    .collect();
                print_table(&["AT", "KIND", "DESTINATION", "REASON"], &rows);
            }
        }
        match args.watch {
            Some(every) => tokio::time::sleep(every).await,
            None => return Ok(()),
        }
    }
}

#[derive(Subcommand)]
pub enum DestinationsAction {
    /// Holds delivery to a destination (its queue keeps filling).
    #[command(after_help = "Example:\n  switchyard destinations pause billing")]
    Pause {
        /// The destination's name.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Lets a paused destination deliver again.
    #[command(after_help = "Example:\n  switchyard destinations resume billing")]
    Resume {
        /// The destination's name.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Cancels every delivery queued for a destination (its DLQ stays).
    #[command(after_help = "Example:\n  switchyard destinations purge billing --yes")]
    Purge {
        /// The destination's name.
        name: String,
        #[command(flatten)]
        conn: Conn,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long, short)]
        yes: bool,
    },
}

pub async fn destinations(action: DestinationsAction) -> anyhow::Result<()> {
    let (name, conn, verb) = match &action {
        DestinationsAction::Pause { name, conn } => (name, conn, "pause"),
        DestinationsAction::Resume { name, conn } => (name, conn, "resume"),
        DestinationsAction::Purge { name, conn, yes } => {
            confirm(
                &format!("cancel every delivery queued for destination {name:?}"),
                *yes,
            )?;
            let http = conn.client()?;
            let body =
                call(http.delete(conn.url(&format!("/v1/destinations/{name}/queue")))).await?;
            println!(
                "{name}: purged {} queued, {} in flight cancelled when their attempt ends",
                body["purged"], body["in_flight"]
            );
            return Ok(());
        }
    };
    let http = conn.client()?;
    let body = call(http.post(conn.url(&format!("/v1/destinations/{name}/{verb}")))).await?;
    let state = if body["paused"] == true {
        "paused"
    } else {
        "delivering"
    };
    println!("{name}: {state}");
    Ok(())
}

#[derive(Args)]
pub struct EventFilter {
    /// Only events of this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only events routed to this destination.
    #[arg(long)]
    destination: Option<String>,
    /// Only events with a delivery in this state (pending, in_flight,
    /// delivered, dead_lettered, cancelled).
    #[arg(long)]
    state: Option<String>,
}

impl EventFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("include", "payload".to_owned())];
        if let Some(t) = &self.topic {
            q.push(("topic", t.clone()));
        }
        if let Some(d) = &self.destination {
            q.push(("destination", d.clone()));
        }
        if let Some(s) = &self.state {
            q.push(("state", s.clone()));
        }
        q
    }
}

#[derive(Subcommand)]
pub enum EventsAction {
    /// Lists events, oldest first, with their payloads.
    #[command(after_help = "Example:\n  switchyard events list --topic orders --limit 20")]
    List {
        #[command(flatten)]
        filter: EventFilter,
        /// Only events accepted at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// How many events to show (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one event: payload, headers, and every delivery attempt.
    #[command(after_help = "Example:\n  switchyard events show 01JD6Z3Q8YQ2V8M7T4W1N0C5RK")]
    Show {
        /// The event id.
        id: String,
        #[command(flatten)]
        conn: Conn,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancels one event's pending delivery to a destination.
    #[command(
        after_help = "Example:\n  switchyard events cancel --destination billing 01JD6Z3Q8YQ2V8M7T4W1N0C5RK"
    )]
    Cancel {
        /// The destination whose delivery to cancel.
        #[arg(long)]
        destination: String,
        /// The event id.
        id: String,
        #[command(flatten)]
        conn: Conn,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints events as they arrive, until interrupted.
    #[command(after_help = "Example:\n  switchyard events tail --topic orders --json")]
    Tail {
        #[command(flatten)]
        filter: EventFilter,
        /// How often to ask the gateway for new events.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
        #[command(flatten)]
        conn: Conn,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
}

/// An event's payload as the API gave it: text, or base64 decoded and
/// described.
fn payload_text(e: &Value) -> String {
    if let Some(p) = e["payload"].as_str() {
        return p.to_owned();
    }
    if let Some(b) = e["payload_base64"].as_str() {
        let n = base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|v| v.len())
            .unwrap_or(0);
        return format!("<{n} bytes, not UTF-8; base64: {b}>");
    }
    "-".to_owned()
}

/// One event with its deliveries and attempts, for people.
pub fn print_event(e: &Value) {
    println!("event:            {}", cell(&e["id"]));
    println!("topic:            {}", cell(&e["topic"]));
    println!("received at:      {}", cell(&e["received_at"]));
    println!("content type:     {}", cell(&e["content_type"]));
    if let Some(h) = e["headers"].as_object().filter(|h| !h.is_empty()) {
        println!("headers:");
        for (k, v) in h {
            println!("  {k}: {}", cell(v));
        }
    }
    println!("payload:          {}", payload_text(e));
    for d in e["deliveries"].as_array().cloned().unwrap_or_default() {
        println!(
            "delivery to {}: {} after {} attempt(s){}",
            cell(&d["destination"]),
            cell(&d["state"]),
            cell(&d["attempt_count"]),
            d["last_error"]
                .as_str()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
        for a in d["attempts"].as_array().cloned().unwrap_or_default() {
            println!(
                "  attempt {} at {}: {} {}",
                cell(&a["attempt"]),
                cell(&a["at"]),
                cell(&a["status"]),
                a["error"].as_str().unwrap_or("")
            );
        }
    }
}

fn event_rows(events: &[Value]) -> Vec<Vec<String>> {
    events
        .iter()
        .map(|e| {
            let states: Vec<String> = e["deliveries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|d| format!("{}={}", cell(&d["destination"]), cell(&d["state"])))
                .collect();
            let mut payload = payload_text(e).replace('\n', " ");
            if payload.chars().count() > 60 {
                payload = payload.chars().take(57).collect::<String>() + "...";
            }
            vec![
                cell(&e["id"]),
                cell(&e["topic"]),
                cell(&e["received_at"]),
                if states.is_empty() {
                    "-".to_owned()
                } else {
                    states.join(",")
                },
                payload,
            ]
        })
        .collect()
}

const EVENT_HEADER: [&str; 5] = ["ID", "TOPIC", "RECEIVED AT", "DELIVERIES", "PAYLOAD"];

pub async fn events(action: EventsAction) -> anyhow::Result<()> {
    match action {
        EventsAction::List {
            filter,
            since,
            limit,
            conn,
            json,
        } => {
            let http = conn.client()?;
            let mut q = filter.query();
            q.push(("limit", limit.to_string()));
            if let Some(s) = since {
                q.push(("since", s));
            }
            let body = call(http.get(conn.url("/v1/events")).query(&q)).await?;
            if json {
                return print_json(&body);
            }
            let events = body["events"].as_array().cloned().unwrap_or_default();
            print_table(&EVENT_HEADER, &event_rows(&events));
            if let Some(next) = body["next_cursor"].as_str() {
                println!("(more after {next})");
            }
        }
        EventsAction::Show { id, conn, json } => {
            let http = conn.client()?;
            let body = call(
                http.get(conn.url(&format!("/v1/events/{id}")))
                    .query(&[("include", "payload")]),
            )
            .await?;
            if json {
                return print_json(&body);
            }
            print_event(&body);
        }
        EventsAction::Cancel {
            destination,
            id,
            conn,
            json,
        } => {
            let http = conn.client()?;
            let body =
                call(http.delete(conn.url(&format!("/v1/destinations/{destination}/events/{id}"))))
                    .await?;
            if json {
                return print_json(&body);
            }
            match body["state"].as_str() {
                Some("cancelled_at_attempt_end") => println!(
                    "{id} at {destination}: an attempt is running; cancelled when it ends unless it delivers"
                ),
                _ => println!("{id} at {destination}: cancelled"),
            }
        }
        EventsAction::Tail {
            filter,
            interval,
            conn,
            json,
        } => {
            let http = conn.client()?;
            // From now on: events accepted before the tail began are history.
            let since = switchyard_core::event::rfc3339(switchyard_core::now_ms());
            let mut cursor: Option<String> = None;
            let mut header_shown = false;
            loop {
                let mut q = filter.query();
                q.push(("since", since.clone()));
                q.push(("limit", "1000".to_owned()));
                if let Some(c) = &cursor {
                    q.push(("cursor", c.clone()));
                }
                let body = call(http.get(conn.url("/v1/events")).query(&q)).await?;
                let events = body["events"].as_array().cloned().unwrap_or_default();
                if let Some(last) = events.last().and_then(|e| e["id"].as_str()) {
                    cursor = Some(last.to_owned());
                } else if let Some(next) = body["next_cursor"].as_str() {
                    // A page that scanned without a match still moves on.
                    cursor = Some(next.to_owned());
                }
                if json {
                    for e in &events {
                        println!("{}", serde_json::to_string(e)?);
                    }
                } else if !events.is_empty() {
                    let rows = event_rows(&events);
                    if !header_shown {
                        print_table(&EVENT_HEADER, &rows);
                        header_shown = true;
                    } else {
                        for r in rows {
                            println!("{}", r.join("  "));
                        }
                    }
                }
                use std::io::Write;
                std::io::stdout().flush()?;
                if body["next_cursor"].is_null() {
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct PublishArgs {
    /// The topic to publish to.
    topic: String,
    /// Read the body from this file (default: stdin).
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// A request header, as `Name: value` (repeatable), e.g. an
    /// `Idempotency-Key` or a `content-type`.
    #[arg(long = "header", short = 'H', value_name = "K:V")]
    headers: Vec<String>,
    #[command(flatten)]
    conn: Conn,
    /// Print the raw JSON answer.
    #[arg(long)]
    json: bool,
}

pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let body = match &args.file {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the body from stdin")?;
            buf
        }
    };
    let http = args.conn.client()?;
    let mut req = http
        .post(args.conn.url(&format!("/v1/topics/{}/events", args.topic)))
        .body(body);
    let mut has_type = false;
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h:?}: expected NAME:VALUE, e.g. Idempotency-Key:order-42");
        };
        has_type |= k.trim().eq_ignore_ascii_case("content-type");
        req = req.header(k.trim(), v.trim());
    }
    if !has_type {
        req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
    }
    let answer = call(req).await?;
    if args.json {
        return print_json(&answer);
    }
    let dup = if answer["duplicate"] == true {
        " (duplicate: already accepted)"
    } else {
        ""
    };
    println!("{}{dup}", cell(&answer["id"]));
    Ok(())
}
