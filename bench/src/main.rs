//! `loadgen`: drives a running gateway over HTTP/1.1 keep-alive and reports
//! throughput and latency; optionally runs the sink the gateway delivers to
//! and reports deliveries per second. `scripts/bench.sh` runs the standard
//! set; BENCHMARKS.md explains the method.
//!
//! Latency is measured from when a request was *due* (at a fixed rate) or
//! sent (at full speed) to when its answer arrived, so a stalled server shows
//! up in the percentiles instead of silently slowing the sender down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Clone)]
#[command(about = "Load generator for Switchyard benchmarks")]
struct Args {
    /// Ingest URL, e.g. http://127.0.0.1:8080/v1/topics/bench/events. Give
    /// several (comma-separated) to spread the connections over several
    /// gateways round-robin, as a load balancer would.
    #[arg(long, required = true, value_delimiter = ',')]
    url: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to send.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (requests are sent but not counted).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Target events per second across all connections; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Size of each JSON event in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Send this file's bytes as every event instead of generated JSON
    /// (e.g. a Confluent wire-format Avro datum).
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    /// Content type of the events sent.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// Run a sink on this address and report deliveries per second.
    #[arg(long)]
    sink: Option<String>,
    /// Run an OTLP/HTTP trace sink on this address (answers 200 to every
    /// export) and report how many export requests arrived.
    #[arg(long)]
    otlp_sink: Option<String>,
    /// With --sink: how many deliveries to wait for after sending (0 = all acked).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// After sending, drain this pull queue (its base URL, e.g.
    /// http://127.0.0.1:8080/v1/queues/jobs) with receive + ack, and report messages/s.
    #[arg(long)]
    pull: Option<String>,
    /// Pull consumers running at once.
    #[arg(long, default_value_t = 8)]
    consumers: usize,
    /// Messages per receive.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// The gateway's process id: report the CPU time it spent per event
    /// over the measured window (from /proc/PID/stat). CPU per event is far
    /// steadier than throughput on a shared, noisy machine.
    #[arg(long)]
    gateway_pid: Option<u32>,
}

/// User + system CPU time of a process so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (USER_HZ, 100 on Linux).
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()?
        + f.get(12).context("no stime")?.parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// A JSON object of about `size` bytes.
fn payload(size: usize) -> Bytes {
    let head = r#"{"type":"order.created","account":"acct_42","pad":""#;
    let tail = r#""}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)))
}

#[derive(Default)]
struct Totals {
    ok: AtomicU64,
    errors: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let sink = match &args.sink {
        Some(addr) => Some(start_sink(addr).await?),
        None => None,
    };
    // An empty 200 body is a valid (empty) ExportTraceServiceResponse.
    let otlp = match &args.otlp_sink {
        Some(addr) => Some(start_sink(addr).await?),
        None => None,
    };
    let targets: Vec<(hyper::Uri, String)> = args
        .url
        .iter()
        .map(|u| {
            let uri: hyper::Uri = u.parse().context("bad --url")?;
            let authority = uri.authority().context("--url needs a host")?.to_string();
            anyhow::Ok((uri, authority))
        })
        .collect::<Result<_, _>>()?;
    let body = match &args.body_file {
        Some(p) => Bytes::from(std::fs::read(p)?),
        None => payload(args.size),
    };
    let totals = Arc::new(Totals::default());
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let per_conn_interval = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.connections as f64 / args.rate as f64));

    let cpu = args.gateway_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = cpu_time(pid)?;
            tokio::time::sleep_until(end.into()).await;
            anyhow::Ok(cpu_time(pid)? - before)
        })
    });
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (uri, authority) = targets[c % targets.len()].clone();
        let body = body.clone();
        let content_type = args.content_type.clone();
        let (totals, hist) = (totals.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut due = Instant::now();
            // Spread the connections' schedules so they don't fire together.
            if let Some(iv) = per_conn_interval {
                due += iv.mul_f64(rand_fraction());
            }
            while Instant::now() < end {
                // Latency counts from when the request was due, except that a
                // timer waking up late (tokio's timer has 1 ms ticks) is not
                // blamed on the server: if we had to wait for `due`, the clock
                // starts when we actually woke.
                let started = if let Some(iv) = per_conn_interval {
                    due += iv;
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                        Instant::now()
                    } else {
                        due
                    }
                } else {
                    Instant::now()
                };
                let req = Request::post(uri.clone())
                    .header("host", &authority)
                    .header("content-type", content_type.as_str())
                    .body(Full::new(body.clone()))?;
                send.ready().await?;
                let resp = send.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                let now = Instant::now();
                if now < measure_from {
                    continue;
                }
                if status.is_success() {
                    totals.ok.fetch_add(1, Ordering::Relaxed);
                    local.saturating_record(now.duration_since(started).as_micros() as u64);
                } else {
                    totals.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Ok(mut h) = hist.lock() {
                h.add(&local)?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let ok = totals.ok.load(Ordering::Relaxed);
    let errors = totals.errors.load(Ordering::Relaxed);
    let h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let secs = args.duration.as_secs_f64();
    println!(
        "ingest: {ok} events in {secs:.1}s = {:.0} events/s ({} connections, {} B, rate {}), errors {errors}",
        ok as f64 / secs,
        args.connections,
        args.size,
        if args.rate > 0 {
            args.rate.to_string()
        } else {
            "max".into()
        }
    );
    println!(
        "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.90) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    if let Some(cpu) = cpu {
        let spent = cpu.await??;
        println!(
            "gateway cpu: {:.1} s over the window = {:.1}% of one core, {:.1} ms per 1,000 events",
            spent.as_secs_f64(),
            100.0 * spent.as_secs_f64() / secs,
            1e6 * spent.as_secs_f64() / ok.max(1) as f64
        );
    }
    if let Some(otlp) = &otlp {
        println!(
            "otlp: {} trace export requests received",
            otlp.count.load(Ordering::Relaxed)
        );
    }
    if let Some(queue) = &args.pull {
        drain_pull(queue, args.consumers, args.batch).await?;
    }
    if let Some(sink) = sink {
        // Everything sent (warm-up included) is eventually delivered; wait for
        // the count to stop growing, then report the steady delivery rate.
        let deadline = Instant::now() + args.drain_timeout;
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let n = sink.count.load(Ordering::Relaxed);
            if (n == last && n > 0) || Instant::now() > deadline {
                break;
            }
            last = n;
        }
        let (n, first, last_at) = sink.span();
        if n < 2 {
            bail!("the sink received {n} deliveries");
        }
        let span = last_at.duration_since(first).as_secs_f64();
        println!(
            "delivery: {n} deliveries in {span:.1}s = {:.0} deliveries/s",
            n as f64 / span
        );
    }
    Ok(())
}

struct SinkStats {
    count: AtomicU64,
    times: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl SinkStats {
    fn span(&self) -> (u64, Instant, Instant) {
        let t = self.times.lock().map(|t| *t).unwrap_or((None, None));
        let now = Instant::now();
        (
            self.count.load(Ordering::Relaxed),
            t.0.unwrap_or(now),
            t.1.unwrap_or(now),
        )
    }
}

/// A sink that answers 200 to everything and counts.
async fn start_sink(addr: &str) -> anyhow::Result<Arc<SinkStats>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let stats = Arc::new(SinkStats {
        count: AtomicU64::new(0),
        times: Mutex::new((None, None)),
    });
    let st = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let st = st.clone();
                    async move {
                        req.into_body().collect().await?;
                        st.count.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut t) = st.times.lock() {
                            let now = Instant::now();
                            t.0.get_or_insert(now);
                            t.1 = Some(now);
                        }
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(stats)
}

/// A fraction in [0, 1) from the clock's low bits: enough to de-phase connections.
fn rand_fraction() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(n % 1000) / 1000.0
}

/// One keep-alive HTTP/1.1 connection that posts JSON and reads JSON.
struct JsonConn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl JsonConn {
    async fn open(authority: &str) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            send,
            authority: authority.to_owned(),
        })
    }

    async fn post(
        &mut self,
        uri: &hyper::Uri,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let req = Request::post(uri.clone())
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        self.send.ready().await?;
        let resp = self.send.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{uri}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Drains a pull queue with `consumers` concurrent receive+ack loops until a
/// receive comes back empty, and reports the rate.
async fn drain_pull(base: &str, consumers: usize, batch: usize) -> anyhow::Result<()> {
    let receive: hyper::Uri = format!("{base}/receive").parse()?;
    let ack: hyper::Uri = format!("{base}/ack").parse()?;
    let authority = receive
        .authority()
        .context("--pull needs a host")?
        .to_string();
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (receive, ack, authority, total) = (
            receive.clone(),
            ack.clone(),
            authority.clone(),
            total.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = JsonConn::open(&authority).await?;
            loop {
                let got = conn
                    .post(
                        &receive,
                        serde_json::json!({"max_messages": batch, "wait_seconds": 0}),
                    )
                    .await?;
                let receipts: Vec<serde_json::Value> = got["messages"]
                    .as_array()
                    .map(|ms| ms.iter().map(|m| m["receipt"].clone()).collect())
                    .unwrap_or_default();
                if receipts.is_empty() {
                    return anyhow::Ok(());
                }
                let n = receipts.len() as u64;
                conn.post(&ack, serde_json::json!({ "receipts": receipts }))
                    .await?;
                total.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = total.load(Ordering::Relaxed);
    println!(
        "pull: {n} messages received and acked in {secs:.1}s = {:.0} messages/s ({consumers} consumers, batches of {batch})",
        n as f64 / secs
    );
    Ok(())
}
