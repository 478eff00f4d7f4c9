//! Builds the example plugins (`plugins/`, for wasm32-wasip2) whenever the
//! gateway builds, so `cargo run -p switchyard -- serve --config
//! examples/quickstart/switchyard.toml` works on a fresh machine with no
//! manual step.
//!
//! - It reruns only when a plugin's sources, the SDK or the WIT contract
//!   change, so an ordinary gateway build pays nothing.
//! - The nested cargo uses its own target dir (`plugins/target`): sharing
//!   the outer build's dir would wait forever on the lock the outer cargo
//!   holds.
//! - It never fails the gateway build: without the wasm32-wasip2 target (or
//!   offline) it prints a warning that says how to build the plugins by hand.
//! - `SWITCHYARD_SKIP_PLUGIN_BUILD=1` turns it off (CI that builds plugins
//!   separately, packaging).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // gateway/switchyard -> the repository root.
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("../.."))
        .to_owned();
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-env-changed=SWITCHYARD_SKIP_PLUGIN_BUILD");
    if !plugins.join("Cargo.toml").is_file() {
        return;
    }
    watch_sources(&root, &plugins);
    if std::env::var_os("SWITCHYARD_SKIP_PLUGIN_BUILD").is_some_and(|v| v != "0") {
        return;
    }
    if let Err(why) = build_plugins(&plugins) {
        println!(
            "cargo:warning=example plugins not built ({why}); run scripts/build-plugins.sh to build them"
        );
    }
}

/// Everything the plugins are built from, but not `plugins/target`: a
/// directory in `rerun-if-changed` is scanned whole, and the nested build's
/// own output would make every build rerun this script.
fn watch_sources(root: &Path, plugins: &Path) {
    for p in [root.join("sdk-guest"), root.join("schemas/wit")] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let mut stack = vec![plugins.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.join("Cargo.toml").is_file() || path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            } else if path.is_dir() {
                // Folders of crates (e.g. `fixtures/`): their crates are
                // listed one by one; a new crate shows in `plugins/Cargo.toml`.
                stack.push(path);
            }
        }
    }
}

fn build_plugins(plugins: &Path) -> Result<(), String> {
    ensure_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(plugins.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(plugins.join("target"));
    // The outer build's settings (its rustflags, target, profile, jobserver)
    // are for the gateway, not for wasm32 guests.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || matches!(
                k.as_ref(),
                "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTFLAGS"
                    | "RUSTDOC"
                    | "TARGET"
                    | "HOST"
                    | "PROFILE"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Err(format!(
        "cargo build of plugins/ failed: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

/// Adds the wasm32-wasip2 target through rustup when it is missing.
fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2") => Ok(()),
        Ok(_) => {
            let status = Command::new("rustup")
                .args(["target", "add", "wasm32-wasip2"])
                .status()
                .map_err(|e| format!("cannot run rustup: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err("`rustup target add wasm32-wasip2` failed".to_owned())
            }
        }
        // Without rustup the toolchain may still have the target (distro
        // packages): let cargo try and report.
        Err(_) => Ok(()),
    }
}
