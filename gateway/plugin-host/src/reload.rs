//! Hot reload: watch each plugin file (through `crate::watch`: folders,
//! debounced), reload what changed. The content hash decides whether
//! anything changed at all.

use std::sync::Arc;
use std::time::Duration;

use super::PluginError;
use super::host::Shared;
use switchyard_core::watch::{Watcher, watch_files};

/// Quiet time after the last file event before reloading: long enough for
/// `cp` of a few MB to finish, short enough to go live well within a second.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Starts watching every plugin's file and a thread that reloads.
pub(crate) fn watch(shared: Arc<Shared>) -> Result<Watcher, PluginError> {
    let files = shared
        .slots
        .iter()
        .map(|(name, slot)| (slot.config.path.clone(), name.clone()))
        .collect();
    let weak = Arc::downgrade(&shared);
    drop(shared);
    watch_files(files, DEBOUNCE, "plugin-reload", move |touched| {
        let Some(shared) = weak.upgrade() else {
            return false;
        };
        if shared.stopped() {
            return false;
        }
        for name in touched {
            if let Some(slot) = shared.slots.get(&name) {
                // Errors are recorded in the slot's status and logged there.
                let _ = slot.reload(&shared.engine);
            }
        }
        true
    })
    .map_err(PluginError::Watch)
}
