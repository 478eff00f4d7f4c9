//! `backlog`: what a big backlog costs. Starts the real gateway (the binary
//! at `--gateway`) on a fresh data dir with one HTTP destination, paused,
//! fills its queue with `--events` events through the batch endpoint, and
//! reports:
//!
//! - the gateway's RSS (and peak RSS) with the backlog queued;
//! - how long a restart takes to be ready (`/readyz` answering 200) and
//!   the RSS after it, with the backlog still there;
//! - the drain rate once the destination is resumed, into a sink that
//!   answers 200 (over `--drain-for`, or until the queue is empty).
//!
//! `scripts/bench.sh backlog` runs it; BENCHMARKS.md records the figures.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Clone)]
#[command(about = "Backlog benchmark for Switchyard: RSS, restart time and drain rate")]
struct Args {
    /// The `switchyard` binary.
    #[arg(long)]
    gateway: PathBuf,
    /// Events to queue.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Bytes per event (JSON).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent connections while filling.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Port for the gateway; the sink takes the next one.
    #[arg(long, default_value_t = 18680)]
    port: u16,
    /// How long to measure the drain after resuming (0: until empty).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_for: Duration,
    /// Keep the data dir here instead of a temp dir (it is not removed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// RSS and peak RSS of a process, in MiB, from /proc/PID/status.
fn rss_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .context("no value")?
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn du_mib(dir: &std::path::Path) -> f64 {
    fn walk(p: &std::path::Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                _ => e.metadata().map(|m| m.len()).unwrap_or(0),
            })
            .sum()
    }
    walk(dir) as f64 / 1024.0 / 1024.0
}

struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    fn start(bin: &PathBuf, config: &std::path::Path, port: u16) -> anyhow::Result<Self> {
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("BACKLOG_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the gateway")?;
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for /readyz; how long it took.
    async fn ready(&self, started: Instant) -> anyhow::Result<Duration> {
        loop {
            if let Ok((200, _)) = get(&format!("{}/readyz", self.base)).await {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the gateway did not become ready in 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

async fn conn(
    authority: &str,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (send, c) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(c);
    Ok(send)
}

async fn request(method: &str, url: &str, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().context("no host")?.to_string();
    let mut send = conn(&authority).await?;
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(Full::new(body))?;
    let resp = send.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

async fn get(url: &str) -> anyhow::Result<(u16, Bytes)> {
    request("GET", url, Bytes::new()).await
}

async fn queue_depth(base: &str) -> anyhow::Result<u64> {
    let (status, body) = get(&format!("{base}/v1/destinations")).await?;
    if status != 200 {
        bail!("GET /v1/destinations: {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["destinations"][0]["queue_depth"].as_u64().unwrap_or(0)
        + v["destinations"][0]["in_flight"].as_u64().unwrap_or(0))
}

/// A sink that answers 200 and counts.
async fn sink(port: u16) -> anyhow::Result<Arc<AtomicU64>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let c = c.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let c = c.clone();
                    async move {
                        req.into_body().collect().await?;
                        c.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(count)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempdir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.clone());
    std::fs::create_dir_all(&dir)?;
    let sink_port = args.port + 1;
    let config = dir.join("backlog.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\ndurability = \"sync\"\n\
             min_free_disk = \"1GiB\"\nmax_body = \"16MiB\"\n\
             [[destinations]]\nname = \"held\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{sink_port}/hook\"\n\
             concurrency = 64\n\
             [[topics]]\nname = \"backlog\"\nroutes = [\"held\"]\n",
            args.port,
            dir.join("data").display()
        ),
    )?;
    let delivered = sink(sink_port).await?;

    // Fill, with the destination paused.
    let started = Instant::now();
    let gw = Gateway::start(&args.gateway, &config, args.port)?;
    gw.ready(started).await?;
    let (s, b) = request(
        "POST",
        &format!("{}/v1/destinations/held/pause", gw.base),
        Bytes::new(),
    )
    .await?;
    if s != 200 {
        bail!("pause: {s}: {}", String::from_utf8_lossy(&b));
    }
    let pad = args.size.saturating_sub(40);
    let one = format!(
        "{{\"type\":\"order.created\",\"pad\":\"{}\"}}",
        "x".repeat(pad)
    );
    let batch = Bytes::from(format!(
        "[{}]",
        std::iter::repeat_n(one.as_str(), args.batch)
            .collect::<Vec<_>>()
            .join(",")
    ));
    let batches = args.events.div_ceil(args.batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let fill_started = Instant::now();
    let mut tasks = Vec::new();
    let url: hyper::Uri = format!("{}/v1/topics/backlog/events/batch", gw.base).parse()?;
    for _ in 0..args.connections {
        let (next, batch, url) = (next.clone(), batch.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let authority = url.authority().context("host")?.to_string();
            let mut send = conn(&authority).await?;
            while next.fetch_add(1, Ordering::Relaxed) < batches {
                let req = Request::post(url.clone())
                    .header("host", &authority)
                    .header("content-type", "application/json")
                    .body(Full::new(batch.clone()))?;
                send.ready().await?;
                let resp = send.send_request(req).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                if status != 202 {
                    bail!("batch: {status}: {}", String::from_utf8_lossy(&body));
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let filled = fill_started.elapsed();
    // Wait until every event is routed into the queue.
    let target = batches * args.batch as u64;
    loop {
        if queue_depth(&gw.base).await? >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queued = fill_started.elapsed();
    println!(
        "fill: {target} events in {:.1}s ({:.0} events/s); all queued after {:.1}s",
        filled.as_secs_f64(),
        target as f64 / filled.as_secs_f64(),
        queued.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, peak) = rss_mib(gw.pid())?;
    println!(
        "with the backlog: RSS {rss:.0} MiB (peak {peak:.0} MiB), data dir {:.0} MiB",
        du_mib(&dir.join("data"))
    );

    // Restart with the backlog.
    gw.stop()?;
    let started = Instant::now();
    let gw = Gateway::start(&args.gateway, &config, args.port)?;
    let ready = gw.ready(started).await?;
    let (rss, peak) = rss_mib(gw.pid())?;
    let depth = queue_depth(&gw.base).await?;
    println!(
        "restart: ready in {:.2}s with {depth} queued; RSS {rss:.0} MiB (peak {peak:.0} MiB)",
        ready.as_secs_f64()
    );

    // Drain.
    let before = delivered.load(Ordering::Relaxed);
    let resumed = Instant::now();
    let (s, _) = request(
        "POST",
        &format!("{}/v1/destinations/held/resume", gw.base),
        Bytes::new(),
    )
    .await?;
    if s != 200 {
        bail!("resume: {s}");
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = delivered.load(Ordering::Relaxed) - before;
        let until_empty = args.drain_for.is_zero();
        if (until_empty && done >= depth) || (!until_empty && resumed.elapsed() >= args.drain_for) {
            break;
        }
    }
    let took = resumed.elapsed();
    let done = delivered.load(Ordering::Relaxed) - before;
    let (rss, peak) = rss_mib(gw.pid())?;
    println!(
        "drain: {done} deliveries in {:.1}s = {:.0} deliveries/s; RSS {rss:.0} MiB (peak {peak:.0} MiB)",
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64()
    );
    gw.stop()?;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("switchyard-backlog-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
