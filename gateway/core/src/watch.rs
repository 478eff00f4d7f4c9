//! Watching files that get replaced in place (plugins, TLS certificates).
//!
//! Folders, not files, are watched: `cp` truncates and rewrites in several
//! writes, editors and deploy tools write a temporary file and rename it over
//! the old one, and a watch on the old file's inode would miss the rename.
//! Events for the watched files are collected until `debounce` passes with
//! none (a half-written file must not be read), then the handler runs, on a
//! thread of its own, with the keys of the files that changed.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

/// The live watcher; dropping it stops the watching and the handler thread.
pub type Watcher = notify::RecommendedWatcher;

/// Watches `files` (each path with the key the handler gets for it). After
/// each burst of changes, `on_change` runs with the keys that changed; it
/// returns `false` to stop watching. The thread is named `thread`.
pub fn watch_files<K>(
    files: Vec<(PathBuf, K)>,
    debounce: Duration,
    thread: &str,
    mut on_change: impl FnMut(HashSet<K>) -> bool + Send + 'static,
) -> Result<Watcher, String>
where
    K: Clone + Eq + Hash + Send + 'static,
{
    // Watched path (folder canonical, plus file name) -> keys.
    let mut by_path: HashMap<PathBuf, Vec<K>> = HashMap::new();
    let mut folders: HashSet<PathBuf> = HashSet::new();
    for (path, key) in files {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let folder = folder
            .canonicalize()
            .map_err(|e| format!("cannot watch the folder of {}: {e}", path.display()))?;
        let Some(file) = path.file_name() else {
            return Err(format!("{} is not a file path", path.display()));
        };
        by_path.entry(folder.join(file)).or_default().push(key);
        folders.insert(folder);
    }
    let (tx, rx) = mpsc::channel::<K>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if event.kind.is_access() {
            return;
        }
        for p in &event.paths {
            for key in by_path.get(p).into_iter().flatten() {
                // The handler thread is gone only when it chose to stop.
                let _ = tx.send(key.clone());
            }
        }
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    for folder in &folders {
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", folder.display()))?;
    }
    std::thread::Builder::new()
        .name(thread.to_owned())
        .spawn(move || {
            // `recv` fails once the watcher (which owns the sender) is dropped.
            while let Ok(first) = rx.recv() {
                let mut touched = HashSet::from([first]);
                while let Ok(more) = rx.recv_timeout(debounce) {
                    touched.insert(more);
                }
                if !on_change(touched) {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the {thread} thread: {e}"))?;
    Ok(watcher)
}
