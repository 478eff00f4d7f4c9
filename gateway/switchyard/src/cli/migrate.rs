//! `switchyard migrate`: a single node's state moved into a JetStream
//! cluster, so a user who outgrows one machine keeps everything.
//!
//! It reads the fjall data dir (holding its lock, so no gateway can run on
//! it meanwhile) and writes into the cluster named by the config's
//! `[store]`, in this order: the schema registry (same ids and versions),
//! each destination's queue opened and its paused flag, the events with
//! their history and dead letters, the queue entries with their delivery
//! states, and the idempotency keys still inside their window. Every write
//! is guarded (`switchyard_store::transfer`), so a second run changes
//! nothing; a checkpoint in the data dir lets an interrupted run go on
//! where it stopped instead of checking everything again. The source is
//! never changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use switchyard::config::Config;
use switchyard_core::{EventId, now_ms};
use switchyard_store::transfer::{Export, Import, Imported};
use switchyard_store::{
    QueueEntry, QueuePolicy, Queues, RegistrySnapshot, RegistryWrite, SchemaStore, StoreError,
};
use switchyard_store_fjall::{Durability, FjallStore};
use switchyard_store_jetstream::JetStreamStore;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The data dir of the single node to move (its `server.data_dir`).
    /// No gateway may be running on it.
    #[arg(long)]
    pub from: PathBuf,
    /// The config the gateways will run with: its `[store]` names the
    /// JetStream cluster to move into (`backend = "jetstream"`), and its
    /// destinations and topics say how queues open and how long
    /// idempotency keys live.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Records read and written per step.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
}

/// Where an interrupted run stopped, kept in the source data dir.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// The cluster it was moving into: another one starts over.
    servers: Vec<String>,
    prefix: String,
    #[serde(default)]
    events_after: Option<EventId>,
    /// Per destination, the last entry written.
    #[serde(default)]
    queues: BTreeMap<String, QueueEntry>,
    /// Destinations whose queue is done.
    #[serde(default)]
    queues_done: BTreeSet<String>,
}

impl Checkpoint {
    fn path(dir: &Path, prefix: &str) -> PathBuf {
        dir.join(format!("migrate-{prefix}.json"))
    }

    fn load(dir: &Path, servers: &[String], prefix: &str) -> Self {
        let fresh = Checkpoint {
            servers: servers.to_vec(),
            prefix: prefix.to_string(),
            ..Default::default()
        };
        let Ok(text) = std::fs::read(Self::path(dir, prefix)) else {
            return fresh;
        };
        match serde_json::from_slice::<Checkpoint>(&text) {
            Ok(c) if c.servers == servers && c.prefix == prefix => c,
            _ => fresh,
        }
    }

    /// Written whole to a temp file, then renamed over the old one.
    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(dir, &self.prefix);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// What is told as it goes.
fn say(what: &str, n: Imported) {
    eprintln!(
        "{what}: {} written, {} already in the cluster",
        n.written, n.present
    );
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = Config::load(&args.config)?;
    let Some(js_config) = config.jetstream_store() else {
        bail!(
            "{}: its [store] is the embedded fjall store; migrate moves a data dir into a JetStream cluster, so give the config the gateways will run with, with [store] backend = \"jetstream\" and the cluster's servers (docs/scale-out.md)",
            args.config.display()
        );
    };
    let from = args.from.clone();
    if !from.join("switchyard.lock").is_file() {
        bail!(
            "{} is not a Switchyard data dir (it holds no switchyard.lock): give --from the server.data_dir of the gateway to move",
            from.display()
        );
    }
    let source = {
        let dir = from.clone();
        tokio::task::spawn_blocking(move || FjallStore::open(&dir, Durability::Buffered))
            .await?
            .with_context(|| format!("cannot open {}", from.display()))?
    };
    let source = Arc::new(source);
    let target = JetStreamStore::open(&js_config)
        .await
        .context("cannot open the JetStream store")?;
    eprintln!(
        "Moving {} into JetStream ({}, prefix {:?}).",
        from.display(),
        js_config.servers.join(", "),
        js_config.prefix
    );
    let mut cp = Checkpoint::load(&from, &js_config.servers, &js_config.prefix);
    let batch = args.batch as usize;
    let result = move_all(&config, &source, &target, &from, &mut cp, batch).await;
    target.close();
    let summary = result?;
    // Done: a later run starts from the front (and finds everything there).
    let _ = std::fs::remove_file(Checkpoint::path(&from, &js_config.prefix));
    println!(
        "Moved {} into prefix {:?} in {:.1}s: {} events, {} queue entries, {} idempotency keys, {} schemas and {} subject versions; {} paused destination(s).",
        from.display(),
        js_config.prefix,
        started.elapsed().as_secs_f64(),
        summary.events.written + summary.events.present,
        summary.queued.written + summary.queued.present,
        summary.keys.written + summary.keys.present,
        summary.schemas,
        summary.versions,
        summary.paused,
    );
    if summary.unrouted > 0 {
        println!(
            "{} of the events had not been routed when {} stopped: they moved as events, not queue entries, and the cluster's gateways route them.",
            summary.unrouted,
            from.display()
        );
    }
    if !summary.unconfigured.is_empty() {
        println!(
            "Not in {}, and waiting there until configured: {}.",
            args.config.display(),
            summary.unconfigured.join(", ")
        );
    }
    println!(
        "Start the gateways with --config {}; {} itself is unchanged.",
        args.config.display(),
        from.display()
    );
    Ok(())
}

#[derive(Default)]
struct Summary {
    events: Imported,
    /// Events the node had not routed when it stopped: they travel as
    /// events, and the cluster's gateways route them (so they come in no
    /// queue). Counted from the source, so a second run counts them again
    /// even once the gateways there have routed them.
    unrouted: usize,
    queued: Imported,
    keys: Imported,
    schemas: usize,
    versions: usize,
    paused: usize,
    unconfigured: Vec<String>,
}

async fn move_all(
    config: &Config,
    source: &Arc<FjallStore>,
    target: &JetStreamStore,
    from: &Path,
    cp: &mut Checkpoint,
    batch: usize,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();

    // 1. The registry first: events' wire-format payloads carry its ids.
    {
        let (s, t) = (source.clone(), target.clone());
        let (schemas, versions) =
            tokio::task::spawn_blocking(move || move_registry(&*s, &t)).await??;
        summary.schemas = schemas;
        summary.versions = versions;
        eprintln!("registry: {schemas} schemas, {versions} subject versions");
    }

    // 2. Every destination's queue, opened as its gateways will open it,
    // and paused flags before any entry arrives.
    let paused = source.export_paused()?;
    let mut dests: BTreeSet<String> = source.export_queue_names()?.into_iter().collect();
    dests.extend(paused.iter().cloned());
    let policies: HashMap<&str, QueuePolicy> = config
        .destinations
        .iter()
        .map(|d| (d.name.as_str(), d.queue_policy()))
        .collect();
    for d in &dests {
        let policy = match policies.get(d.as_str()) {
            Some(p) => *p,
            None => {
                summary.unconfigured.push(d.clone());
                QueuePolicy::default()
            }
        };
        target
            .open_queue(d, policy)
            .await
            .with_context(|| format!("destination {d:?}"))?;
    }
    for d in &paused {
        target.set_paused(d, true).await?;
    }
    summary.paused = paused.len();

    // 3. Events, with their history and dead letters.
    loop {
        let page = source.export_events(cp.events_after, batch)?;
        let Some(last) = page.last().map(|e| e.event.id) else {
            break;
        };
        let first = page[0].event.id;
        summary.unrouted += page.iter().filter(|e| e.pending_route).count();
        summary.events += target.import_events(page).await.with_context(|| {
            format!("cannot write the events {first} to {last} into the cluster (run migrate again to go on from here)")
        })?;
        cp.events_after = Some(last);
        cp.save(from)?;
        say("events", summary.events);
    }

    // 4. Queue entries with their delivery states.
    for d in &dests {
        if cp.queues_done.contains(d) {
            continue;
        }
        loop {
            let page = source.export_queue(d, cp.queues.get(d), batch)?;
            let Some(last) = page.last().map(|q| q.entry.clone()) else {
                break;
            };
            summary.queued += target.import_queued(page).await.with_context(|| {
                format!("cannot write destination {d:?}'s queue entries into the cluster (run migrate again to go on from here)")
            })?;
            cp.queues.insert(d.clone(), last);
            cp.save(from)?;
            say(&format!("queue {d}"), summary.queued);
        }
        cp.queues_done.insert(d.clone());
        cp.save(from)?;
    }

    // 5. Idempotency keys, each for what is left of its topic's window.
    let windows: HashMap<&str, Duration> = config
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.idempotency_window))
        .collect();
    let default_window = windows
        .values()
        .copied()
        .max()
        .unwrap_or(Duration::from_secs(24 * 3600));
    let now = now_ms();
    let mut after: Option<(String, String)> = None;
    let mut expired = 0u64;
    loop {
        let page =
            source.export_keys(after.as_ref().map(|(t, k)| (t.as_str(), k.as_str())), batch)?;
        let Some(last) = page.last().map(|k| (k.topic.clone(), k.key.clone())) else {
            break;
        };
        let mut live = Vec::with_capacity(page.len());
        for k in page {
            let window = windows
                .get(k.topic.as_str())
                .copied()
                .unwrap_or(default_window);
            let age = Duration::from_millis(now.saturating_sub(k.received_at_ms));
            match window.checked_sub(age) {
                Some(left) if left >= Duration::from_secs(1) => live.push((k, left)),
                _ => expired += 1,
            }
        }
        summary.keys += target.import_keys(live).await?;
        after = Some(last);
    }
    say("idempotency keys", summary.keys);
    if expired > 0 {
        eprintln!("idempotency keys: {expired} past their window, left behind");
    }

    // 6. Paused again: band consumers created by step 4 pause too.
    for d in &paused {
        target.set_paused(d, true).await?;
    }
    Ok(summary)
}

/// Writes the source's schemas, versions and levels the cluster lacks,
/// with their ids; refuses if the cluster's registry holds another schema
/// under one of those ids. Returns (schemas, versions) in the source.
fn move_registry(
    source: &dyn SchemaStore,
    target: &dyn SchemaStore,
) -> anyhow::Result<(usize, usize)> {
    let src = source.load_schemas()?;
    loop {
        let dst = target.load_schemas()?;
        let writes = registry_writes(&src, &dst)?;
        if writes.is_empty() {
            return Ok((src.schemas.len(), src.versions.len()));
        }
        let mut lost = false;
        for chunk in writes.chunks(200) {
            match target.write_schemas(chunk) {
                Ok(()) => {}
                // A gateway of the cluster changed the registry meanwhile:
                // read it again and decide again.
                Err(StoreError::Conflict(_)) => {
                    lost = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !lost {
            return Ok((src.schemas.len(), src.versions.len()));
        }
    }
}

/// What `dst` lacks of `src`: schemas before the versions naming them.
fn registry_writes(
    src: &RegistrySnapshot,
    dst: &RegistrySnapshot,
) -> anyhow::Result<Vec<RegistryWrite>> {
    let have: HashMap<u32, &str> = dst
        .schemas
        .iter()
        .map(|s| (s.id, s.schema.as_str()))
        .collect();
    let mut writes = Vec::new();
    for s in &src.schemas {
        match have.get(&s.id) {
            Some(text) if *text == s.schema => {}
            Some(_) => bail!(
                "the cluster's registry holds another schema under id {}: it was used before this migration, and ids must stay as they are (payloads carry them); migrate into an empty registry (another [store] prefix)",
                s.id
            ),
            None => writes.push(RegistryWrite::PutSchema(s.clone())),
        }
    }
    let versions: HashMap<(&str, u32), u32> = dst
        .versions
        .iter()
        .map(|v| ((v.subject.as_str(), v.version), v.schema_id))
        .collect();
    for v in &src.versions {
        match versions.get(&(v.subject.as_str(), v.version)) {
            Some(id) if *id == v.schema_id => {}
            Some(id) => bail!(
                "the cluster's registry holds version {} of subject {:?} as schema {id}, not {}: migrate into an empty registry (another [store] prefix)",
                v.version,
                v.subject,
                v.schema_id
            ),
            None => writes.push(RegistryWrite::PutVersion(v.clone())),
        }
    }
    if let Some(level) = &src.global_level
        && dst.global_level.is_none()
    {
        writes.push(RegistryWrite::PutLevel {
            subject: None,
            level: level.clone(),
        });
    }
    let levels: BTreeSet<&str> = dst.subject_levels.iter().map(|(s, _)| s.as_str()).collect();
    for (subject, level) in &src.subject_levels {
        if !levels.contains(subject.as_str()) {
            writes.push(RegistryWrite::PutLevel {
                subject: Some(subject.clone()),
                level: level.clone(),
            });
        }
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use switchyard_store::{SchemaRecord, VersionRecord};

    use super::*;

    fn snap(schemas: &[(u32, &str)], versions: &[(&str, u32, u32)]) -> RegistrySnapshot {
        RegistrySnapshot {
            schemas: schemas
                .iter()
                .map(|(id, s)| SchemaRecord {
                    id: *id,
                    schema: s.to_string(),
                })
                .collect(),
            versions: versions
                .iter()
                .map(|(s, v, id)| VersionRecord {
                    subject: s.to_string(),
                    version: *v,
                    schema_id: *id,
                    deleted: false,
                })
                .collect(),
            global_level: Some("FULL".into()),
            subject_levels: vec![],
            next_id: 3,
        }
    }

    #[test]
    fn the_registry_moves_what_the_cluster_lacks_and_refuses_a_clash() {
        let src = snap(&[(1, "a"), (2, "b")], &[("s", 1, 1), ("s", 2, 2)]);
        let all = registry_writes(&src, &RegistrySnapshot::default()).expect("writes");
        assert_eq!(all.len(), 5, "two schemas, two versions, the level");
        assert!(matches!(all[0], RegistryWrite::PutSchema(_)));
        // Half there already: only the rest.
        let half = snap(&[(1, "a")], &[("s", 1, 1)]);
        let rest = registry_writes(&src, &half).expect("writes");
        assert_eq!(rest.len(), 2);
        assert!(registry_writes(&src, &src).expect("writes").is_empty());
        // Another schema under id 1: refused, naming the id.
        let other = snap(&[(1, "z")], &[]);
        let e = registry_writes(&src, &other).expect_err("refused");
        assert!(e.to_string().contains("under id 1"), "{e}");
    }
}
