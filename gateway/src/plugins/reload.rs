//! Hot reload: watch each plugin file's folder, debounce, reload what changed.
//!
//! Folders, not files, are watched: `cp` truncates and rewrites in several
//! writes, editors and deploy tools write a temporary file and rename it over
//! the old one, and a watch on the old file's inode would miss the rename.
//! Events are debounced (a partial file would fail to compile) and the
//! content hash decides whether anything changed at all.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use super::PluginError;
use super::host::Shared;

/// Quiet time after the last file event before reloading: long enough for
/// `cp` of a few MB to finish, short enough to go live well within a second.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// The live watcher; dropping it stops the watching and the reload thread.
pub type Watcher = notify::RecommendedWatcher;

/// Starts watching every plugin's folder and a thread that reloads.
pub(crate) fn watch(shared: Arc<Shared>) -> Result<Watcher, PluginError> {
    // Watched path (folder + file name, folder canonical) -> plugin names.
    let mut by_path: HashMap<PathBuf, Vec<String>> = HashMap::new();
    let mut folders: HashSet<PathBuf> = HashSet::new();
    for (name, slot) in &shared.slots {
        let path = &slot.config.path;
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let folder = folder.canonicalize().map_err(|e| {
            PluginError::Watch(format!(
                "cannot watch plugin {name:?}'s folder {}: {e}",
                folder.display()
            ))
        })?;
        let Some(file) = path.file_name() else {
            return Err(PluginError::Watch(format!(
                "plugin {name:?}: {} is not a file path",
                path.display()
            )));
        };
        by_path
            .entry(folder.join(file))
            .or_default()
            .push(name.clone());
        folders.insert(folder);
    }
    let (tx, rx) = mpsc::channel::<String>();
    let routes = by_path.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if event.kind.is_access() {
            return;
        }
        for p in &event.paths {
            if let Some(names) = routes.get(p) {
                for n in names {
                    // The reload thread is gone only when the host is.
                    let _ = tx.send(n.clone());
                }
            }
        }
    })
    .map_err(|e| PluginError::Watch(format!("cannot start the file watcher: {e}")))?;
    for folder in &folders {
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|e| PluginError::Watch(format!("cannot watch {}: {e}", folder.display())))?;
    }
    let weak = Arc::downgrade(&shared);
    drop(shared);
    std::thread::Builder::new()
        .name("plugin-reload".to_owned())
        .spawn(move || reload_loop(&rx, &weak))
        .map_err(|e| PluginError::Watch(format!("cannot start the reload thread: {e}")))?;
    Ok(watcher)
}

fn reload_loop(rx: &mpsc::Receiver<String>, shared: &std::sync::Weak<Shared>) {
    // `recv` fails once the watcher (which owns the sender) is dropped.
    while let Ok(first) = rx.recv() {
        let mut touched = HashSet::from([first]);
        while let Ok(more) = rx.recv_timeout(DEBOUNCE) {
            touched.insert(more);
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.stopped() {
            return;
        }
        for name in touched {
            if let Some(slot) = shared.slots.get(&name) {
                // Errors are recorded in the slot's status and logged there.
                let _ = slot.reload(&shared.engine);
            }
        }
    }
}
