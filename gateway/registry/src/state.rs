//! The registry's state and its operations, independent of HTTP.
//!
//! Everything lives in memory (schemas parsed once, so validation never
//! re-parses) and is written through to the store's `SchemaStore` before a change is
//! made visible. Writers take one mutex: that makes "allocate the next id,
//! persist it, publish it" atomic, and keeps two concurrent registrations of
//! the same schema from getting two ids. Readers only take a read lock long
//! enough to clone an `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::Value;

use super::compat::{self, Level};
use super::error::ApiError;
use super::json_schema::JsonSchema;
use super::kinds::{Parsed, Reference, SchemaType, decode_stored, encode_stored};
use super::protobuf::ProtoSchema;
use super::schema::{Schema, normalized_text};
use switchyard_store::{
    RegistrySnapshot, RegistryWrite, SchemaRecord, SchemaStore, StoreError, VersionRecord,
};

/// A registered schema, parsed.
#[derive(Debug)]
pub struct StoredSchema {
    pub id: u32,
    /// As first registered; clients get it back verbatim.
    pub text: String,
    /// Decides identity: the type, the references and the normalized text
    /// (see `schema::normalized_text` for Avro).
    pub normalized: String,
    pub references: Vec<Reference>,
    pub parsed: Parsed,
}

impl StoredSchema {
    pub fn schema_type(&self) -> SchemaType {
        self.parsed.schema_type()
    }
}

/// A schema submitted by a client, checked and parsed, not yet stored.
#[derive(Debug)]
pub struct Submission {
    pub text: String,
    pub normalized: String,
    pub references: Vec<Reference>,
    pub parsed: Parsed,
}

/// A reference as a client sends it: the version may be `-1`, the latest.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RawReference {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default = "latest_version")]
    pub version: i64,
}

fn latest_version() -> i64 {
    -1
}

/// A version as asked for in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    /// `latest`, `-1`, or 1..=2^31-1, as Confluent allows.
    pub fn parse(s: &str) -> Result<VersionSpec, ApiError> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(VersionSpec::Number(n as u32)),
            _ => Err(ApiError::invalid_version(s)),
        }
    }
}

#[derive(Default)]
struct State {
    schemas: HashMap<u32, Arc<StoredSchema>>,
    by_normalized: HashMap<String, u32>,
    /// Every subject with at least one version record (live or soft-deleted),
    /// its versions in ascending order.
    subjects: BTreeMap<String, Vec<VersionRecord>>,
    global_level: Option<Level>,
    subject_levels: HashMap<String, Level>,
    next_id: u32,
    /// Schema id -> how many version records (live or soft-deleted) use it.
    /// Kept so the wire-format hot path needn't scan every subject.
    usage: HashMap<u32, usize>,
}

impl State {
    fn live(&self, subject: &str) -> impl Iterator<Item = &VersionRecord> {
        self.subjects
            .get(subject)
            .into_iter()
            .flatten()
            .filter(|v| !v.deleted)
    }

    fn level_for(&self, subject: &str) -> Level {
        self.subject_levels
            .get(subject)
            .copied()
            .or(self.global_level)
            .unwrap_or(Level::DEFAULT)
    }

    /// Finds a version; `deleted` lets soft-deleted ones count.
    fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<&VersionRecord, ApiError> {
        let versions = self
            .subjects
            .get(subject)
            .filter(|vs| deleted || vs.iter().any(|v| !v.deleted))
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let found = match spec {
            VersionSpec::Latest => versions.iter().rev().find(|v| deleted || !v.deleted),
            VersionSpec::Number(n) => versions
                .iter()
                .find(|v| v.version == n && (deleted || !v.deleted)),
        };
        found.ok_or_else(|| ApiError::version_not_found(subject, spec))
    }

    fn schema(&self, id: u32) -> Result<&Arc<StoredSchema>, ApiError> {
        self.schemas
            .get(&id)
            .ok_or_else(|| ApiError::internal(format!("schema id {id} is missing from memory")))
    }

    /// Whether any version, even soft-deleted, still uses `id`: a
    /// permanently deleted schema stops being served by id.
    fn id_in_use(&self, id: u32) -> bool {
        self.usage.get(&id).is_some_and(|n| *n > 0)
    }

    fn release(&mut self, id: u32) {
        if let Some(n) = self.usage.get_mut(&id) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A version with its schema, as reads return it.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub subject: String,
    pub version: u32,
    pub schema: Arc<StoredSchema>,
}

/// The result of a compatibility test.
#[derive(Debug)]
pub struct CompatReport {
    pub is_compatible: bool,
    pub messages: Vec<String>,
}

pub struct Core {
    store: Arc<dyn SchemaStore>,
    state: RwLock<State>,
    /// Serialises every change: id allocation and write-through are atomic.
    writes: Mutex<()>,
    /// (writer id, reader id) -> can the reader read the writer's data.
    /// Schemas never change under an id, so entries never go stale.
    resolvable: RwLock<HashMap<(u32, u32), Result<(), compat::Incompatibility>>>,
    /// The store's registry generation when `state` was loaded (`None`:
    /// this process is the only writer, nothing to follow).
    generation: Mutex<Option<u64>>,
}

/// Checks a submitted schema that has no references: type, then the
/// type's own parser.
pub fn parse_submission(
    text: &str,
    schema_type: Option<&str>,
    has_references: bool,
) -> Result<Submission, ApiError> {
    let ty = SchemaType::parse(schema_type)?;
    if has_references {
        return Err(ApiError::invalid_schema(
            "This schema's references can't be resolved here: register it through the \
             registry's API"
                .into(),
        ));
    }
    parse_typed(text, ty, Vec::new(), &[])
}

/// Parses `text` as a schema of type `ty`, whose references are resolved
/// to `resolved` (the same order as `references`).
fn parse_typed(
    text: &str,
    ty: SchemaType,
    references: Vec<Reference>,
    resolved: &[Arc<StoredSchema>],
) -> Result<Submission, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid_schema("Empty schema".into()));
    }
    let refs_key = serde_json::to_string(&references).unwrap_or_default();
    match ty {
        SchemaType::Avro => {
            if !references.is_empty() {
                return Err(ApiError::invalid_schema(
                    "Avro schema references are not supported by Switchyard's registry: \
                     inline the referenced types (JSON and PROTOBUF schemas may have references)"
                        .into(),
                ));
            }
            let json: Value = serde_json::from_str(text)
                .map_err(|e| ApiError::invalid_schema(format!("Invalid schema: not JSON: {e}")))?;
            apache_avro::Schema::parse(&json)
                .map_err(|e| ApiError::invalid_schema(format!("Invalid schema: {e}")))?;
            let parsed = Schema::parse(&json)
                .map_err(|e| ApiError::invalid_schema(format!("Invalid schema: {e}")))?;
            Ok(Submission {
                text: text.to_string(),
                normalized: normalized_text(&json),
                references,
                parsed: Parsed::Avro(parsed),
            })
        }
        SchemaType::Json => {
            let mut refs = HashMap::new();
            for (r, s) in references.iter().zip(resolved) {
                let Parsed::Json(j) = &s.parsed else {
                    return Err(ApiError::invalid_schema(format!(
                        "Invalid schema: reference {:?} (subject {:?} version {}) is a {} \
                         schema, not JSON",
                        r.name,
                        r.subject,
                        r.version,
                        s.schema_type().as_str()
                    )));
                };
                for (name, v) in j.refs.iter() {
                    refs.insert(name.clone(), v.clone());
                }
                refs.insert(r.name.clone(), j.root.clone());
            }
            let parsed = JsonSchema::parse(text, refs)
                .map_err(|e| ApiError::invalid_schema(format!("Invalid JSON schema: {e}")))?;
            let normalized = format!("JSON\n{refs_key}\n{}", parsed.root);
            Ok(Submission {
                text: text.to_string(),
                normalized,
                references,
                parsed: Parsed::Json(parsed),
            })
        }
        SchemaType::Protobuf => {
            let mut refs = Vec::with_capacity(references.len());
            for (r, s) in references.iter().zip(resolved) {
                let Parsed::Protobuf(p) = &s.parsed else {
                    return Err(ApiError::invalid_schema(format!(
                        "Invalid schema: reference {:?} (subject {:?} version {}) is a {} \
                         schema, not PROTOBUF",
                        r.name,
                        r.subject,
                        r.version,
                        s.schema_type().as_str()
                    )));
                };
                refs.push((r.name.clone(), p));
            }
            let parsed = ProtoSchema::parse(text, &refs)
                .map_err(|e| ApiError::invalid_schema(format!("Invalid schema: {e}")))?;
            let normalized = format!("PROTOBUF\n{refs_key}\n{}", parsed.canonical);
            Ok(Submission {
                text: text.to_string(),
                normalized,
                references,
                parsed: Parsed::Protobuf(parsed),
            })
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A panic while holding the lock leaves consistent data: every change
    // is built aside and swapped in, so poisoning carries no information.
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// The in-memory registry from a snapshot; schemas in `known` (by id) are
/// taken as they are instead of parsed again.
fn build_state(
    snap: RegistrySnapshot,
    known: &HashMap<u32, Arc<StoredSchema>>,
) -> Result<State, super::RegistryError> {
    let mut state = State {
        next_id: snap.next_id,
        global_level: snap.global_level.as_deref().and_then(Level::parse),
        ..State::default()
    };
    // Versions first: references name (subject, version), and a
    // referenced schema always has a smaller id than one referring to it,
    // so parsing in id order finds every reference already parsed.
    let version_ids: HashMap<(String, u32), u32> = snap
        .versions
        .iter()
        .map(|v| ((v.subject.clone(), v.version), v.schema_id))
        .collect();
    let mut records = snap.schemas;
    records.sort_by_key(|r| r.id);
    for rec in records {
        if let Some(k) = known.get(&rec.id) {
            state.by_normalized.insert(k.normalized.clone(), rec.id);
            state.schemas.insert(rec.id, k.clone());
            continue;
        }
        let corrupt = |message: String| super::RegistryError::CorruptSchema {
            id: rec.id,
            message,
        };
        let (ty, references, text) = decode_stored(&rec.schema).map_err(corrupt)?;
        let mut resolved = Vec::with_capacity(references.len());
        for r in &references {
            let s = version_ids
                .get(&(r.subject.clone(), r.version))
                .and_then(|id| state.schemas.get(id))
                .ok_or_else(|| {
                    corrupt(format!(
                        "reference {:?} names subject {:?} version {}, which is not stored",
                        r.name, r.subject, r.version
                    ))
                })?;
            resolved.push(s.clone());
        }
        let sub = parse_typed(&text, ty, references, &resolved).map_err(|e| corrupt(e.message))?;
        state.by_normalized.insert(sub.normalized.clone(), rec.id);
        state.schemas.insert(
            rec.id,
            Arc::new(StoredSchema {
                id: rec.id,
                text: sub.text,
                normalized: sub.normalized,
                references: sub.references,
                parsed: sub.parsed,
            }),
        );
    }
    for v in snap.versions {
        *state.usage.entry(v.schema_id).or_default() += 1;
        state.subjects.entry(v.subject.clone()).or_default().push(v);
    }
    for vs in state.subjects.values_mut() {
        vs.sort_by_key(|v| v.version);
    }
    for (subject, level) in snap.subject_levels {
        if let Some(l) = Level::parse(&level) {
            state.subject_levels.insert(subject, l);
        }
    }
    Ok(state)
}

impl Core {
    /// Loads and parses everything stored.
    pub fn load(store: Arc<dyn SchemaStore>) -> Result<Core, super::RegistryError> {
        // Read before the snapshot: a change between the two makes the next
        // `sync` load again, never miss one.
        let generation = store.registry_generation()?;
        let snap = store.load_schemas()?;
        let state = build_state(snap, &HashMap::new())?;
        Ok(Core {
            store,
            state: RwLock::new(state),
            writes: Mutex::new(()),
            resolvable: RwLock::new(HashMap::new()),
            generation: Mutex::new(generation),
        })
    }

    /// Loads the registry again if another gateway changed it since this
    /// one loaded (a shared store only; a no-op on fjall). Schemas already
    /// parsed are kept: an id never changes its schema. Whether it loaded.
    pub fn sync(&self) -> Result<bool, super::RegistryError> {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.sync_locked()
    }

    fn sync_locked(&self) -> Result<bool, super::RegistryError> {
        let Some(now) = self.store.registry_generation()? else {
            return Ok(false);
        };
        let mut seen = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *seen == Some(now) {
            return Ok(false);
        }
        let snap = self.store.load_schemas()?;
        let known = read(&self.state).schemas.clone();
        let state = build_state(snap, &known)?;
        *write(&self.state) = state;
        *seen = Some(now);
        Ok(true)
    }

    /// Before a change: the latest state, so it is decided on what every
    /// gateway wrote.
    fn sync_for_write(&self) -> Result<(), ApiError> {
        self.sync_locked()
            .map(|_| ())
            .map_err(|e| ApiError::store(format!("Error while reading the registry: {e}")))
    }

    fn persist(&self, writes: &[RegistryWrite]) -> Result<(), ApiError> {
        self.store.write_schemas(writes).map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::changed_elsewhere(),
            e => ApiError::store(format!("Error while storing the change: {e}")),
        })
    }

    /// Checks a submitted schema, resolving its references to registered
    /// versions (`-1` is the latest).
    pub fn submission(
        &self,
        text: &str,
        schema_type: Option<&str>,
        references: Vec<RawReference>,
    ) -> Result<Submission, ApiError> {
        let ty = SchemaType::parse(schema_type)?;
        let mut refs = Vec::with_capacity(references.len());
        let mut resolved = Vec::with_capacity(references.len());
        {
            let st = read(&self.state);
            for r in references {
                if r.name.is_empty() || r.subject.is_empty() {
                    return Err(ApiError::invalid_schema(format!(
                        "Invalid schema: a reference needs a name and a subject (got name {:?}, \
                         subject {:?})",
                        r.name, r.subject
                    )));
                }
                let spec = match r.version {
                    -1 => VersionSpec::Latest,
                    n => VersionSpec::parse(&n.to_string())?,
                };
                let v = st.version(&r.subject, spec, false).map_err(|e| {
                    ApiError::invalid_schema(format!(
                        "Invalid schema: reference {:?} can't be resolved: {}",
                        r.name, e.message
                    ))
                })?;
                resolved.push(st.schema(v.schema_id)?.clone());
                refs.push(Reference {
                    name: r.name,
                    subject: r.subject,
                    version: v.version,
                });
            }
        }
        parse_typed(text, ty, refs, &resolved)
    }

    /// Ids of the schemas whose references name `subject` at `version`.
    pub fn referenced_by(&self, subject: &str, version: u32) -> Vec<u32> {
        let st = read(&self.state);
        let mut ids: Vec<u32> = st
            .schemas
            .values()
            .filter(|s| st.id_in_use(s.id))
            .filter(|s| {
                s.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .map(|s| s.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Registers `sub` under `subject`; returns its id.
    pub fn register(&self, subject: &str, sub: Submission) -> Result<u32, ApiError> {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        // Decided on the latest state; a change another gateway made at the
        // same moment wins the write, and this one is decided again.
        let mut tries = 0;
        let (id, new_schema, record) = loop {
            self.sync_for_write()?;
            let (id, new_schema, version) = {
                let st = read(&self.state);
                let existing_id = st.by_normalized.get(&sub.normalized).copied();
                if let Some(id) = existing_id
                    && st.live(subject).any(|v| v.schema_id == id)
                {
                    return Ok(id);
                }
                let level = st.level_for(subject);
                let previous: Vec<(u32, &Parsed)> = st
                    .live(subject)
                    .filter_map(|v| st.schemas.get(&v.schema_id).map(|s| (v.version, &s.parsed)))
                    .collect();
                let problems = compat::check_parsed(level, &sub.parsed, &previous);
                if !problems.is_empty() {
                    return Err(ApiError::incompatible(subject, level, &problems));
                }
                let version = st
                    .subjects
                    .get(subject)
                    .and_then(|vs| vs.last())
                    .map_or(1, |v| v.version.saturating_add(1));
                match existing_id {
                    Some(id) => (id, None, version),
                    None => (st.next_id, Some(st.next_id), version),
                }
            };
            let record = VersionRecord {
                subject: subject.to_string(),
                version,
                schema_id: id,
                deleted: false,
            };
            let mut writes = Vec::with_capacity(2);
            if new_schema.is_some() {
                writes.push(RegistryWrite::PutSchema(SchemaRecord {
                    id,
                    schema: encode_stored(sub.parsed.schema_type(), &sub.references, &sub.text),
                }));
            }
            writes.push(RegistryWrite::PutVersion(record.clone()));
            match self.persist(&writes) {
                Ok(()) => break (id, new_schema, record),
                Err(e) if e.code == ApiError::CHANGED_ELSEWHERE && tries < 5 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        let mut st = write(&self.state);
        if new_schema.is_some() {
            st.next_id = id.saturating_add(1);
            st.by_normalized.insert(sub.normalized.clone(), id);
            st.schemas.insert(
                id,
                Arc::new(StoredSchema {
                    id,
                    text: sub.text,
                    normalized: sub.normalized,
                    references: sub.references,
                    parsed: sub.parsed,
                }),
            );
        }
        *st.usage.entry(id).or_default() += 1;
        st.subjects
            .entry(subject.to_string())
            .or_default()
            .push(record);
        Ok(id)
    }

    /// `POST /subjects/{s}`: the version under which `sub` is registered.
    pub fn lookup(
        &self,
        subject: &str,
        sub: &Submission,
        deleted: bool,
    ) -> Result<VersionView, ApiError> {
        let st = read(&self.state);
        let versions = st
            .subjects
            .get(subject)
            .filter(|vs| deleted || vs.iter().any(|v| !v.deleted))
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let id = st.by_normalized.get(&sub.normalized).copied();
        let found = versions
            .iter()
            .rev()
            .find(|v| Some(v.schema_id) == id && (deleted || !v.deleted))
            .ok_or_else(ApiError::schema_not_found_under_subject)?;
        Ok(VersionView {
            subject: subject.to_string(),
            version: found.version,
            schema: st.schema(found.schema_id)?.clone(),
        })
    }

    pub fn subjects(&self, deleted: bool, prefix: &str) -> Vec<String> {
        let st = read(&self.state);
        st.subjects
            .iter()
            .filter(|(s, vs)| s.starts_with(prefix) && (deleted || vs.iter().any(|v| !v.deleted)))
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<u32>, ApiError> {
        let st = read(&self.state);
        let vs: Vec<u32> = st
            .subjects
            .get(subject)
            .into_iter()
            .flatten()
            .filter(|v| deleted || !v.deleted)
            .map(|v| v.version)
            .collect();
        if vs.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        Ok(vs)
    }

    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<VersionView, ApiError> {
        let st = read(&self.state);
        let v = st.version(subject, spec, deleted)?;
        Ok(VersionView {
            subject: subject.to_string(),
            version: v.version,
            schema: st.schema(v.schema_id)?.clone(),
        })
    }

    /// A schema by id, if any version (even soft-deleted) still uses it.
    pub fn schema_by_id(&self, id: u32) -> Result<Arc<StoredSchema>, ApiError> {
        let st = read(&self.state);
        match st.schemas.get(&id) {
            Some(s) if st.id_in_use(id) => Ok(s.clone()),
            _ => Err(ApiError::schema_not_found(id)),
        }
    }

    /// (subject, version) pairs using `id`.
    pub fn id_usages(&self, id: u32, deleted: bool) -> Result<Vec<(String, u32)>, ApiError> {
        self.schema_by_id(id)?;
        let st = read(&self.state);
        Ok(st
            .subjects
            .values()
            .flatten()
            .filter(|v| v.schema_id == id && (deleted || !v.deleted))
            .map(|v| (v.subject.clone(), v.version))
            .collect())
    }

    /// Deletes a subject; returns the versions deleted.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<u32>, ApiError> {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.sync_for_write()?;
        let versions: Vec<VersionRecord> = read(&self.state)
            .subjects
            .get(subject)
            .cloned()
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        for v in &versions {
            if !self.referenced_by(subject, v.version).is_empty() {
                return Err(ApiError::referenced(subject, v.version));
            }
        }
        let live: Vec<&VersionRecord> = versions.iter().filter(|v| !v.deleted).collect();
        if permanent {
            if !live.is_empty() {
                return Err(ApiError::subject_not_soft_deleted(subject));
            }
            let mut writes: Vec<RegistryWrite> = versions
                .iter()
                .map(|v| RegistryWrite::DeleteVersion {
                    subject: subject.to_string(),
                    version: v.version,
                })
                .collect();
            writes.push(RegistryWrite::DeleteLevel {
                subject: Some(subject.to_string()),
            });
            self.persist(&writes)?;
            let mut st = write(&self.state);
            st.subjects.remove(subject);
            st.subject_levels.remove(subject);
            for v in &versions {
                st.release(v.schema_id);
            }
            Ok(versions.iter().map(|v| v.version).collect())
        } else {
            if live.is_empty() {
                return Err(ApiError::subject_soft_deleted(subject));
            }
            let writes: Vec<RegistryWrite> = live
                .iter()
                .map(|v| {
                    RegistryWrite::PutVersion(VersionRecord {
                        deleted: true,
                        ..(*v).clone()
                    })
                })
                .collect();
            self.persist(&writes)?;
            let deleted: Vec<u32> = live.iter().map(|v| v.version).collect();
            let mut st = write(&self.state);
            if let Some(vs) = st.subjects.get_mut(subject) {
                for v in vs.iter_mut() {
                    v.deleted = true;
                }
            }
            Ok(deleted)
        }
    }

    /// Deletes one version; returns its number.
    pub fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, ApiError> {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.sync_for_write()?;
        let rec = {
            let st = read(&self.state);
            let versions = st
                .subjects
                .get(subject)
                .ok_or_else(|| ApiError::subject_not_found(subject))?;
            let found = match spec {
                // A permanent delete of "latest" means the latest soft-deleted
                // version may go; a soft delete means the latest live one.
                VersionSpec::Latest => versions.iter().rev().find(|v| permanent || !v.deleted),
                VersionSpec::Number(n) => versions.iter().find(|v| v.version == n),
            };
            found
                .cloned()
                .ok_or_else(|| ApiError::version_not_found(subject, spec))?
        };
        if !self.referenced_by(subject, rec.version).is_empty() {
            return Err(ApiError::referenced(subject, rec.version));
        }
        if permanent {
            if !rec.deleted {
                return Err(ApiError::version_not_soft_deleted(subject, rec.version));
            }
            self.persist(&[RegistryWrite::DeleteVersion {
                subject: subject.to_string(),
                version: rec.version,
            }])?;
            let mut st = write(&self.state);
            if let Some(vs) = st.subjects.get_mut(subject) {
                vs.retain(|v| v.version != rec.version);
                if vs.is_empty() {
                    st.subjects.remove(subject);
                }
            }
            st.release(rec.schema_id);
        } else {
            if rec.deleted {
                return Err(ApiError::version_soft_deleted(subject, rec.version));
            }
            self.persist(&[RegistryWrite::PutVersion(VersionRecord {
                deleted: true,
                ..rec.clone()
            })])?;
            let mut st = write(&self.state);
            if let Some(v) = st
                .subjects
                .get_mut(subject)
                .and_then(|vs| vs.iter_mut().find(|v| v.version == rec.version))
            {
                v.deleted = true;
            }
        }
        Ok(rec.version)
    }

    /// The level in force: the subject's, else the global one, else the default.
    /// `None` subject: the global level.
    pub fn level(&self, subject: Option<&str>, default_to_global: bool) -> Result<Level, ApiError> {
        let st = read(&self.state);
        match subject {
            None => Ok(st.global_level.unwrap_or(Level::DEFAULT)),
            Some(s) => match st.subject_levels.get(s) {
                Some(l) => Ok(*l),
                None if default_to_global => Ok(st.global_level.unwrap_or(Level::DEFAULT)),
                None => Err(ApiError::subject_level_not_configured(s)),
            },
        }
    }

    pub fn set_level(&self, subject: Option<&str>, level: Level) -> Result<(), ApiError> {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.sync_for_write()?;
        self.persist(&[RegistryWrite::PutLevel {
            subject: subject.map(String::from),
            level: level.as_str().to_string(),
        }])?;
        let mut st = write(&self.state);
        match subject {
            None => st.global_level = Some(level),
            Some(s) => {
                st.subject_levels.insert(s.to_string(), level);
            }
        }
        Ok(())
    }

    /// Removes a level; returns the one that was in force before.
    pub fn delete_level(&self, subject: Option<&str>) -> Result<Level, ApiError> {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.sync_for_write()?;
        let previous = {
            let st = read(&self.state);
            match subject {
                None => st.global_level.unwrap_or(Level::DEFAULT),
                Some(s) => match st.subject_levels.get(s) {
                    Some(l) => *l,
                    None if st.subjects.contains_key(s) => {
                        return Err(ApiError::subject_level_not_configured(s));
                    }
                    None => return Err(ApiError::subject_not_found(s)),
                },
            }
        };
        self.persist(&[RegistryWrite::DeleteLevel {
            subject: subject.map(String::from),
        }])?;
        let mut st = write(&self.state);
        match subject {
            None => st.global_level = None,
            Some(s) => {
                st.subject_levels.remove(s);
            }
        }
        Ok(previous)
    }

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`. `spec = None`
    /// tests against every live version.
    pub fn test_compatibility(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        sub: &Submission,
    ) -> Result<CompatReport, ApiError> {
        let st = read(&self.state);
        let level = st.level_for(subject);
        let live: Vec<&VersionRecord> = st.live(subject).collect();
        let against: Vec<&VersionRecord> = match spec {
            Some(VersionSpec::Number(n)) => {
                vec![st.version(subject, VersionSpec::Number(n), false)?]
            }
            // Like Confluent: testing against "latest" of a subject with no
            // versions is compatible (there is nothing to break).
            Some(VersionSpec::Latest) | None => live,
        };
        let previous: Vec<(u32, &Parsed)> = against
            .iter()
            .filter_map(|v| st.schemas.get(&v.schema_id).map(|s| (v.version, &s.parsed)))
            .collect();
        // "All versions" applies the level's directions to every version.
        let effective = match (spec, level) {
            (None, Level::Backward) => Level::BackwardTransitive,
            (None, Level::Forward) => Level::ForwardTransitive,
            (None, Level::Full) => Level::FullTransitive,
            (_, l) => l,
        };
        let problems = compat::check_parsed(effective, &sub.parsed, &previous);
        let mut messages: Vec<String> = problems
            .iter()
            .map(|(v, p)| describe_problem(*v, p))
            .collect();
        if !messages.is_empty() {
            messages.push(format!("{{compatibility: '{}'}}", level.as_str()));
        }
        Ok(CompatReport {
            is_compatible: problems.is_empty(),
            messages,
        })
    }

    /// The schema a topic validates against.
    pub fn resolve_reader(
        &self,
        subject: &str,
        version: Option<u32>,
    ) -> Option<(u32, Arc<StoredSchema>)> {
        let st = read(&self.state);
        let spec = version.map_or(VersionSpec::Latest, VersionSpec::Number);
        let v = st.version(subject, spec, false).ok()?;
        let s = st.schemas.get(&v.schema_id)?.clone();
        Some((v.version, s))
    }

    /// A writer schema named by a wire-format id: soft-deleted versions still
    /// count, as producers may have written with them.
    pub fn writer_schema(&self, id: u32) -> Option<Arc<StoredSchema>> {
        let st = read(&self.state);
        st.schemas.get(&id).filter(|_| st.id_in_use(id)).cloned()
    }

    /// Whether data written with `writer` resolves to `reader`, cached.
    pub fn resolvable(
        &self,
        writer: &StoredSchema,
        reader: &StoredSchema,
    ) -> Result<(), compat::Incompatibility> {
        if writer.id == reader.id {
            return Ok(());
        }
        if let Some(r) = read(&self.resolvable).get(&(writer.id, reader.id)) {
            return r.clone();
        }
        let r = match (&writer.parsed, &reader.parsed) {
            (Parsed::Avro(w), Parsed::Avro(r)) => compat::can_read(w, r),
            (w, r) => match compat::read_problems(w, r).into_iter().next() {
                Some(p) => Err(p),
                None => Ok(()),
            },
        };
        write(&self.resolvable).insert((writer.id, reader.id), r.clone());
        r
    }
}

/// One line of a verbose compatibility answer, in Confluent's style.
pub fn describe_problem(version: u32, p: &compat::Incompatibility) -> String {
    format!(
        "{{errorType:'{}', description:'{}', additionalInfo:'at {}', oldSchemaVersion: {}}}",
        p.kind, p.message, p.path, version
    )
}
