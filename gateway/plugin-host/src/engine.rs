//! The wasmtime side: the engine, compiling (with the on-disk cache), the
//! contract check, the sandbox (WASI without capabilities, limits) and
//! instances.
//!
//! Nothing here knows about chains, batches or statistics: see `host.rs`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, UpdateDeadline,
};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::PluginError;
use super::bindings::{self, Bindings, Contract, HANDLER_INTERFACE, Level as LogLevel, Pre};
use super::limits::Language;

/// How often the ticker advances the engine's epoch: how often a running
/// plugin yields to the executor and its deadline is checked, so this is the
/// resolution of `timeout`.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Log lines a plugin may write per second; more are counted and dropped so
/// a chatty plugin cannot flood the gateway's log.
const LOG_LINES_PER_SECOND: u32 = 50;

/// What a trap message keeps of the call's stderr, at most: a Python
/// traceback or a JavaScript exception with its stack, whole, but not a
/// plugin that prints megabytes before it dies.
pub const TRAP_STDERR_LIMIT: usize = 4096;

/// A line of stdout or stderr longer than this is logged in pieces, so an
/// output without newlines cannot grow a buffer without bound.
const LINE_LIMIT: usize = 4096;

/// Compiles components and makes instances. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    pub engine: Engine,
    linker: Arc<Linker<HostState>>,
    /// Where compiled artefacts are kept; `None` compiles every time.
    cache_dir: Option<PathBuf>,
    /// `plugin test` collects the plugins' log lines here to print them
    /// with the results; the gateway leaves it unset (they go to tracing).
    capture: Option<Arc<LogCapture>>,
}

/// Log lines collected for `plugin test`, in order.
#[derive(Default)]
pub struct LogCapture {
    lines: Mutex<Vec<String>>,
}

impl LogCapture {
    fn push(&self, line: String) {
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    /// The lines collected since the last call.
    pub fn take(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// A compiled, checked component, ready to instantiate.
pub struct Compiled {
    /// Linked, and typed by the contract version it exports.
    pub pre: Pre,
    /// sha256 of the `.wasm` file, hex: the plugin's version.
    pub version: String,
    /// The contract version the component exports.
    pub contract: Contract,
    /// What it was written in, which picks its default limits.
    pub language: Language,
    pub loaded_at: SystemTime,
}

/// How big the instance pool is. Slots are only address space until used.
pub struct PoolSize {
    /// Live instances at once: plugins × workers, plus room for reloads.
    pub instances: u32,
    /// The largest `max_memory` of any plugin.
    pub max_memory: u64,
}

impl PluginEngine {
    /// An engine with epoch interruption and the pooling allocator.
    pub fn new(pool: PoolSize, cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        Self::with_capture(pool, cache_dir, None)
    }

    /// An engine whose plugins' log lines go to `capture` instead of the log.
    pub fn with_capture(
        pool: PoolSize,
        cache_dir: Option<PathBuf>,
        capture: Option<Arc<LogCapture>>,
    ) -> Result<Self, PluginError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        // Epochs, not fuel: a deadline check costs a load and a compare at
        // loop heads, where fuel would count every instruction.
        config.epoch_interruption(true);
        // `perf record` sees plugin code by name when asked for a perf map.
        if std::env::var_os("SWITCHYARD_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let mut pooling = PoolingAllocationConfig::default();
        let instances = pool.instances.max(8);
        pooling.total_component_instances(instances);
        // A wasip2 component is several core modules (the program and
        // adapter shims), each with its own instance, memory and tables.
        pooling.total_core_instances(instances * 16);
        pooling.total_memories(instances * 4);
        pooling.total_tables(instances * 16);
        pooling.max_memories_per_module(2);
        // Async calls run on fiber stacks, one per instance in a call.
        pooling.total_stacks(instances);
        pooling.max_memory_size(usize::try_from(pool.max_memory).unwrap_or(usize::MAX));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)
            .map_err(|e| PluginError::Engine(format!("cannot create the Wasm engine: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Engine(format!("cannot link WASI: {e:#}")))?;
        bindings::add_to_linker(&mut linker)
            .map_err(|e| PluginError::Engine(format!("cannot link the log import: {e:#}")))?;
        if let Some(dir) = &cache_dir {
            prepare_cache_dir(dir)?;
        }
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache_dir,
            capture,
        })
    }

    /// Reads, compiles (or loads from the cache) and checks one plugin file.
    pub fn compile(&self, name: &str, path: &Path) -> Result<Compiled, PluginError> {
        let fail = |message: String| PluginError::Load {
            plugin: name.to_owned(),
            message,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        let version = hex::encode(Sha256::digest(&bytes));
        let language = super::limits::detect(&bytes);
        let component = self.component(&bytes, &version).map_err(fail)?;
        let contract = check_contract(&self.engine, &component).map_err(fail)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "cannot be linked: {e:#} (plugins may import only WASI and switchyard:plugin/log)"
            ))
        })?;
        let pre = Pre::new(contract, pre).map_err(|e| {
            fail(format!(
                "does not implement switchyard:plugin@{}: {e:#}",
                contract.version()
            ))
        })?;
        Ok(Compiled {
            pre,
            version,
            contract,
            language,
            loaded_at: SystemTime::now(),
        })
    }

    /// The compiled component, from the cache when it has it.
    fn component(&self, bytes: &[u8], version: &str) -> Result<Component, String> {
        let Some(dir) = &self.cache_dir else {
            return compile_bytes(&self.engine, bytes);
        };
        // The engine's compatibility hash changes with the wasmtime version
        // and its settings: an artefact from another build is never loaded.
        let mut h = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let file = dir.join(format!("{version}-{:016x}.cwasm", h.finish()));
        if let Some(c) = self.cached(&file) {
            return Ok(c);
        }
        // Gateways sharing one cache dir (the e2e tests start dozens) would
        // each compile the same 12-18 MB component at once: the first takes
        // a lock beside the artefact, the others wait for it and then load
        // what it wrote. Without the lock (it cannot be made) each compiles.
        let lock = lock_beside(&file);
        if lock.is_some()
            && let Some(c) = self.cached(&file)
        {
            return Ok(c);
        }
        let component = compile_bytes(&self.engine, bytes)?;
        if let Err(e) = store_cached(&component, &file) {
            tracing::warn!(file = %file.display(), error = %e, "Cannot cache the compiled plugin.");
        }
        drop(lock);
        Ok(component)
    }

    /// The artefact in `file`, when there is a usable one.
    fn cached(&self, file: &Path) -> Option<Component> {
        if !file.exists() {
            return None;
        }
        match load_cached(&self.engine, file) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "Cached plugin artefact unusable; recompiling.");
                None
            }
        }
    }

    /// A fresh store with the plugin's limits and a fresh WASI context.
    pub fn store(&self, name: &Arc<str>, max_memory: u64) -> Store<HostState> {
        let limits = wasmtime::StoreLimitsBuilder::new()
            .memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            // A clear trap at the limit, rather than a failed grow the guest
            // turns into an abort whose cause is lost.
            .trap_on_grow_failure(true)
            .build();
        let log = Arc::new(PluginLog::new(name.clone(), self.capture.clone()));
        let wasi = WasiCtxBuilder::new()
            // No preopened dirs, env or args (the builder's defaults); no
            // network either: a plugin can compute and log, nothing else.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stdout(LogSink {
                log: log.clone(),
                stream: "stdout",
            })
            .stderr(LogSink {
                log: log.clone(),
                stream: "stderr",
            })
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limits,
                log,
                deadline: Instant::now(),
            },
        );
        store.limiter(|s| &mut s.limits);
        // Every epoch tick the running plugin yields to the executor, so
        // other tasks on this tokio worker run between its slices; past the
        // call's deadline it is interrupted (a `Trap::Interrupt`).
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                // tokio's own yield: it lets the runtime poll its timers and
                // sockets before the plugin resumes, which a bare wake-up
                // (`Yield`) does not, so a looping plugin would starve them.
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        store
    }
}

fn compile_bytes(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    if wasmparser_is_core_module(bytes) {
        return Err(
            "is a core Wasm module, not a component: build it for wasm32-wasip2 \
                    (or wrap it with `wasm-tools component new`)"
                .to_owned(),
        );
    }
    Component::from_binary(engine, bytes)
        .map_err(|e| format!("is not a valid Wasm component: {e:#}"))
}

/// Core modules start with version 1 in the preamble; components with a
/// different version/layer word. Checked up front for a clearer message.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Loads a precompiled artefact.
#[allow(unsafe_code)]
fn load_cached(engine: &Engine, file: &Path) -> Result<Component, String> {
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output
    // for this engine. Artefacts are only ever read from a cache dir that
    // only our user may write (the gateway's `plugin_cache_dir` or the one
    // under its `data_dir`, and the CLI's `--cache-dir`, each made mode 0700
    // and refused if others may write it: see `prepare_cache_dir`), written there by `store_cached` below
    // (atomically, by rename), and named after the engine's compatibility
    // hash, so a file from another wasmtime version or config is never read.
    unsafe { Component::deserialize_file(engine, file) }.map_err(|e| format!("{e:#}"))
}

/// Creates the cache dir (mode 0700, parents too) or checks the one there:
/// loading an artefact runs it as native code, so a dir that another user
/// may write into is refused rather than trusted.
fn prepare_cache_dir(dir: &Path) -> Result<(), PluginError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let fail =
        |what: String| PluginError::Engine(format!("plugin cache {}: {what}", dir.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(format!("cannot create it: {e}")))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| fail(format!("cannot read it: {e}")))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(fail(format!(
            "is writable by other users (mode {:o}); `chmod 700` it or pick another --cache-dir",
            mode & 0o777
        )));
    }
    Ok(())
}

/// An exclusive lock on `<file>.lock`, held until dropped: one compile of
/// an artefact at a time, across threads and processes (`flock`).
fn lock_beside(file: &Path) -> Option<std::fs::File> {
    let path = file.with_extension("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            tracing::warn!(file = %path.display(), error = %e, "Cannot open the plugin cache's lock; compiling without it.");
        })
        .ok()?;
    f.lock()
        .map_err(|e| {
            tracing::warn!(file = %path.display(), error = %e, "Cannot take the plugin cache's lock; compiling without it.");
        })
        .ok()?;
    Some(f)
}

/// Writes a compiled artefact atomically: a reader never sees half a file.
fn store_cached(component: &Component, file: &Path) -> Result<(), String> {
    // A name of its own per write: two engines of one process writing the
    // same artefact must not share a temp file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = file.with_extension(format!("tmp{}-{n}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    f.write_all(&bytes).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, file).map_err(|e| e.to_string())
}

/// The contract version the component exports (the newest, should it
/// export several), or why it is refused.
pub fn check_contract(engine: &Engine, component: &Component) -> Result<Contract, String> {
    let ty = component.component_type();
    let names: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    if let Some(c) = Contract::ALL
        .into_iter()
        .find(|c| names.iter().any(|n| n == c.export()))
    {
        return Ok(c);
    }
    let spoken = Contract::spoken("and");
    let prefix = format!("{HANDLER_INTERFACE}@");
    if let Some(other) = names.iter().find_map(|n| n.strip_prefix(&prefix)) {
        return Err(format!(
            "was built for contract switchyard:plugin@{other}, but this gateway speaks \
             switchyard:plugin@{spoken}: rebuild it against a current switchyard SDK"
        ));
    }
    Err(format!(
        "does not export {HANDLER_INTERFACE}@{}, so it is not a Switchyard plugin (its exports: {})",
        Contract::spoken("or"),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    ))
}

/// A live plugin instance and its store.
pub struct Instance {
    pub store: Store<HostState>,
    pub plugin: Bindings,
}

impl Instance {
    /// Instantiates and calls `init` within `timeout`.
    pub async fn new(
        engine: &PluginEngine,
        compiled: &Compiled,
        name: &Arc<str>,
        config: &[(String, String)],
        max_memory: u64,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut store = engine.store(name, max_memory);
        arm(&mut store, timeout);
        let plugin = compiled
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| describe_trap(&e, &store, timeout, max_memory))?;
        match plugin.call_init(&mut store, config).await {
            Ok(Ok(())) => Ok(Self { store, plugin }),
            Ok(Err(message)) => Err(message),
            Err(e) => Err(describe_trap(&e, &store, timeout, max_memory)),
        }
    }

    /// Calls `handle` on a batch within `timeout`, on the calling task,
    /// laid out in the form of the contract the instance speaks. `Err` is a
    /// trap; `Ok(Err(..))` an answer that fails every event of the batch.
    pub async fn handle(
        &mut self,
        events: &[&super::PluginEvent],
        timeout: Duration,
        max_memory: u64,
    ) -> Result<Result<Vec<Result<super::Verdict, String>>, String>, String> {
        arm(&mut self.store, timeout);
        self.plugin
            .call_handle(&mut self.store, events)
            .await
            .map_err(|e| describe_trap(&e, &self.store, timeout, max_memory))
    }
}

/// Sets the deadline of the call about to start. The epoch callback (see
/// [`PluginEngine::store`]) runs at the next tick and every tick after.
/// The stderr a trap reports is this call's only.
fn arm(store: &mut Store<HostState>, timeout: Duration) {
    store.data_mut().deadline = Instant::now() + timeout;
    store.data().log.new_call();
    store.set_epoch_deadline(1);
}

/// A trap, in words an operator can act on, with what the plugin wrote to
/// stderr during the call, up to [`TRAP_STDERR_LIMIT`] (a Rust guest prints
/// its panic message there before aborting, CPython its traceback).
fn describe_trap(
    e: &wasmtime::Error,
    store: &Store<HostState>,
    timeout: Duration,
    max_memory: u64,
) -> String {
    let trap = e.downcast_ref::<wasmtime::Trap>();
    let full = format!("{e:#}");
    let mut message = if trap == Some(&wasmtime::Trap::Interrupt) {
        format!(
            "timed out: exceeded its time limit of {}",
            humantime::format_duration(timeout)
        )
    } else if full.contains("memory") && (full.contains("grow") || full.contains("limit")) {
        format!(
            "exceeded its memory limit of {} ({full})",
            bytesize::ByteSize::b(max_memory)
        )
    } else if trap == Some(&wasmtime::Trap::UnreachableCodeReached) {
        "trapped (it panicked or aborted)".to_owned()
    } else {
        format!("trapped: {full}")
    };
    if let Some(text) = store.data().log.call_stderr() {
        message.push_str(": ");
        message.push_str(&text);
    }
    message
}

/// What a store carries: the WASI context, limits and the plugin's log.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    log: Arc<PluginLog>,
    /// When the call in progress must stop.
    deadline: Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// A line from the plugin's `log` import (either contract version's).
    pub(crate) fn log_line(&mut self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        self.log.line(level, message, fields);
    }
}

/// A plugin's log lines: into tracing (or a [`LogCapture`]), tagged and
/// rate-limited.
struct PluginLog {
    plugin: Arc<str>,
    capture: Option<Arc<LogCapture>>,
    window: Mutex<LogWindow>,
    /// Output since the last newline, per stream: guests write in pieces
    /// (CPython a traceback in several), and a line is logged whole.
    partial: Mutex<[Vec<u8>; 2]>,
    /// What the current call wrote to stderr, the last [`TRAP_STDERR_LIMIT`]
    /// bytes, for the trap message.
    call_stderr: Mutex<Vec<u8>>,
    /// Set once the current call wrote to stderr, so the happy path never locks.
    has_stderr: AtomicBool,
}

struct LogWindow {
    started: Instant,
    lines: u32,
    dropped: u64,
}

impl PluginLog {
    fn new(plugin: Arc<str>, capture: Option<Arc<LogCapture>>) -> Self {
        Self {
            plugin,
            capture,
            window: Mutex::new(LogWindow {
                started: Instant::now(),
                lines: 0,
                dropped: 0,
            }),
            partial: Mutex::new([Vec::new(), Vec::new()]),
            call_stderr: Mutex::new(Vec::new()),
            has_stderr: AtomicBool::new(false),
        }
    }

    /// True if the line may be written now; says how many were dropped.
    fn admit(&self) -> Option<u64> {
        let Ok(mut w) = self.window.lock() else {
            return None;
        };
        if w.started.elapsed() >= Duration::from_secs(1) {
            w.started = Instant::now();
            w.lines = 0;
        }
        if w.lines >= LOG_LINES_PER_SECOND {
            w.dropped += 1;
            return None;
        }
        w.lines += 1;
        Some(std::mem::take(&mut w.dropped))
    }

    fn line(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        let Some(dropped) = self.admit() else { return };
        let plugin = &*self.plugin;
        if dropped > 0 {
            tracing::warn!(
                plugin,
                dropped,
                "Plugin log lines dropped by the rate limit."
            );
        }
        let fields = if fields.is_empty() {
            String::new()
        } else {
            fields
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if let Some(capture) = &self.capture {
            let level = match level {
                LogLevel::Trace => "trace",
                LogLevel::Debug => "debug",
                LogLevel::Info => "info",
                LogLevel::Warn => "warn",
                LogLevel::Error => "error",
            };
            let sep = if fields.is_empty() { "" } else { " " };
            capture.push(format!("[{level}] {message}{sep}{fields}"));
            return;
        }
        match level {
            LogLevel::Trace => tracing::trace!(plugin, fields, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, fields, "{message}"),
            LogLevel::Info => tracing::info!(plugin, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, fields, "{message}"),
            LogLevel::Error => tracing::error!(plugin, fields, "{message}"),
        }
    }

    fn output(&self, stream: &'static str, bytes: &[u8]) {
        if stream == "stderr" {
            if let Ok(mut kept) = self.call_stderr.lock() {
                kept.extend_from_slice(bytes);
                if kept.len() > 2 * TRAP_STDERR_LIMIT {
                    let cut = kept.len() - TRAP_STDERR_LIMIT;
                    kept.drain(..cut);
                }
            }
            self.has_stderr.store(true, Ordering::Relaxed);
        }
        let lines = {
            let Ok(mut partial) = self.partial.lock() else {
                return;
            };
            let buf = &mut partial[usize::from(stream == "stderr")];
            buf.extend_from_slice(bytes);
            let mut lines = Vec::new();
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                lines.push(line);
            }
            if buf.len() > LINE_LIMIT {
                lines.push(std::mem::take(buf));
            }
            lines
        };
        for line in lines {
            let text = String::from_utf8_lossy(&line);
            let line = text.trim_end();
            if line.is_empty() {
                continue;
            }
            self.output_line(stream, line);
        }
    }

    fn output_line(&self, stream: &'static str, line: &str) {
        let Some(dropped) = self.admit() else { return };
        if let Some(capture) = &self.capture {
            capture.push(format!("[{stream}] {line}"));
            return;
        }
        let plugin = &*self.plugin;
        if dropped > 0 {
            tracing::warn!(
                plugin,
                dropped,
                "Plugin log lines dropped by the rate limit."
            );
        }
        tracing::info!(plugin, stream, "{line}");
    }

    /// Forgets the previous call's stderr.
    fn new_call(&self) {
        if self.has_stderr.swap(false, Ordering::Relaxed)
            && let Ok(mut kept) = self.call_stderr.lock()
        {
            kept.clear();
        }
    }

    /// What the current call wrote to stderr, whitespace trimmed, the last
    /// [`TRAP_STDERR_LIMIT`] bytes of it (marked `...` when cut).
    fn call_stderr(&self) -> Option<String> {
        if !self.has_stderr.load(Ordering::Relaxed) {
            return None;
        }
        let kept = self.call_stderr.lock().ok()?;
        let (cut, tail) = if kept.len() > TRAP_STDERR_LIMIT {
            (true, &kept[kept.len() - TRAP_STDERR_LIMIT..])
        } else {
            (false, &kept[..])
        };
        let text = String::from_utf8_lossy(tail);
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(if cut {
            format!("...{text}")
        } else {
            text.to_owned()
        })
    }
}

/// A plugin's stdout or stderr: each line goes to the gateway's log.
#[derive(Clone)]
struct LogSink {
    log: Arc<PluginLog>,
    stream: &'static str,
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.output(self.stream, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.output(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
