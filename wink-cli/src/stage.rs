//! `wink stage <dir>`: build a crate's machine binaries and lay them out as
//! `<dir>/<package>/<Executable>`, the layout `wink-server serve <dir>`
//! serves.
//!
//! Which binary serves which machine name is the crate's to say, in its
//! `Cargo.toml`:
//!
//! ```toml
//! [package.metadata.wink.machines]
//! "counter/Counter" = "counter"       # machine name = cargo binary
//! "counter/Feeder" = "feeder"
//! ```
//!
//! Staging runs `cargo metadata` to read that table and find the target
//! directory, `cargo build --bin …` for those binaries, then copies each to
//! its place, replacing what is there by a rename, so a machine running
//! from the old file is not disturbed (and `wink upgrade` can then run the
//! new one). `cargo xtask stage` stages the examples with the same code.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use wink::MachineName;

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// `cargo` could not be run.
    #[error("cannot run `{cargo} {what}`: {source}")]
    Cargo {
        /// The cargo program.
        cargo: String,
        /// Its subcommand.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// `cargo` ran and failed.
    #[error("`cargo {what}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(":\n{}", .stderr.trim_end()) })]
    CargoFailed {
        /// Its subcommand.
        what: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// `cargo metadata` said something this cannot read.
    #[error("cannot read `cargo metadata`: {0}")]
    Metadata(String),
    /// The crate declares no machines.
    #[error("{manifest}: no machines: add `[package.metadata.wink.machines]` with `\"package/Executable\" = \"<cargo binary>\"` lines")]
    NoMachines {
        /// The manifest read.
        manifest: String,
    },
    /// A machine name in the table is no machine name.
    #[error("{manifest}: `{name}` in [package.metadata.wink.machines]: {why}")]
    BadName {
        /// The manifest read.
        manifest: String,
        /// The name as written.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// A machine's binary is not one of the crate's.
    #[error("{manifest}: machine `{name}` is served by binary `{bin}`, which the crate does not have (its binaries: {bins})")]
    NoSuchBinary {
        /// The manifest read.
        manifest: String,
        /// The machine.
        name: String,
        /// The binary named.
        bin: String,
        /// The binaries there are.
        bins: String,
    },
    /// A file could not be read, written or moved.
    #[error("{what} {}: {source}", .path.display())]
    File {
        /// What was being done.
        what: &'static str,
        /// To which file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// What a crate serves: its machines and where cargo builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The crate's manifest.
    pub manifest: PathBuf,
    /// Each machine name and the cargo binary that runs it, in name order.
    pub machines: Vec<(MachineName, String)>,
    /// Cargo's target directory for that crate.
    pub target_dir: PathBuf,
}

/// The cargo program: `$CARGO` (set when run by cargo), else `cargo`.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Runs `cargo <args>` and returns its standard output.
fn run_cargo(what: &'static str, args: &[&std::ffi::OsStr]) -> Result<String, StageError> {
    let cargo = cargo();
    let output = Command::new(&cargo)
        .args(args)
        .output()
        .map_err(|source| StageError::Cargo {
            cargo: cargo.to_string_lossy().into_owned(),
            what,
            source,
        })?;
    if !output.status.success() {
        return Err(StageError::CargoFailed {
            what,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reads the machines of the crate at `manifest` (its `Cargo.toml`).
pub fn plan(manifest: &Path) -> Result<Plan, StageError> {
    let json = run_cargo(
        "metadata",
        &[
            "metadata".as_ref(),
            "--format-version=1".as_ref(),
            "--no-deps".as_ref(),
            "--manifest-path".as_ref(),
            manifest.as_os_str(),
        ],
    )?;
    read_plan(manifest, &json)
}

/// The plan `cargo metadata`'s `json` gives for the crate at `manifest`.
fn read_plan(manifest: &Path, json: &str) -> Result<Plan, StageError> {
    let bad = |what: &str| StageError::Metadata(what.to_owned());
    let metadata: serde_json::Value =
        serde_json::from_str(json).map_err(|e| StageError::Metadata(e.to_string()))?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .ok_or_else(|| bad("no target_directory"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or_else(|| bad("no packages"))?;
    let wanted = fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_owned());
    let package = packages
        .iter()
        .find(|p| {
            p["manifest_path"]
                .as_str()
                .is_some_and(|m| fs::canonicalize(m).is_ok_and(|m| m == wanted))
        })
        .or_else(|| (packages.len() == 1).then(|| &packages[0]))
        .ok_or_else(|| {
            bad("no package for that manifest (a virtual workspace? give a package's Cargo.toml)")
        })?;
    let shown = manifest.display().to_string();
    let table = package["metadata"]["wink"]["machines"]
        .as_object()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| StageError::NoMachines {
            manifest: shown.clone(),
        })?;
    let bins: Vec<&str> = package["targets"]
        .as_array()
        .map(|targets| {
            targets
                .iter()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .filter_map(|t| t["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut machines = Vec::new();
    for (name, bin) in table {
        let machine: MachineName = name.parse().map_err(|e| StageError::BadName {
            manifest: shown.clone(),
            name: name.clone(),
            why: format!("{e}"),
        })?;
        if machine.tag().is_some() {
            return Err(StageError::BadName {
                manifest: shown.clone(),
                name: name.clone(),
                why: "a binary serves every tag of its name: leave the `#tag` out".to_owned(),
            });
        }
        let Some(bin) = bin.as_str().filter(|b| bins.contains(b)) else {
            return Err(StageError::NoSuchBinary {
                manifest: shown.clone(),
                name: name.clone(),
                bin: bin.as_str().map_or_else(|| bin.to_string(), str::to_owned),
                bins: bins.join(", "),
            });
        };
        machines.push((machine, bin.to_owned()));
    }
    machines.sort_by_key(|(name, _)| name.to_string());
    Ok(Plan {
        manifest: manifest.to_owned(),
        machines,
        target_dir: PathBuf::from(target_dir),
    })
}

/// Builds the plan's binaries (`--release` if `release`) and returns the
/// directory they are in.
pub fn build(plan: &Plan, release: bool) -> Result<PathBuf, StageError> {
    let mut args: Vec<OsString> = vec![
        "build".into(),
        "--manifest-path".into(),
        plan.manifest.clone().into(),
    ];
    if release {
        args.push("--release".into());
    }
    for (_, bin) in &plan.machines {
        args.push("--bin".into());
        args.push(bin.into());
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    run_cargo("build", &args)?;
    Ok(plan
        .target_dir
        .join(if release { "release" } else { "debug" }))
}

/// Copies each machine's binary from `bins` to `<dir>/<package>/<Executable>`,
/// replacing what is there by a rename (a machine running from the old
/// file goes on undisturbed).
pub fn lay_out(plan: &Plan, bins: &Path, dir: &Path) -> Result<(), StageError> {
    let file = |what, path: &Path| {
        let path = path.to_owned();
        move |source| StageError::File { what, path, source }
    };
    for (name, bin) in &plan.machines {
        let from = bins.join(bin);
        let to = dir.join(name.binary_path());
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(file("cannot create", parent))?;
        }
        let partial = to.with_extension("staging");
        fs::copy(&from, &partial).map_err(file("cannot copy", &from))?;
        fs::rename(&partial, &to).map_err(file("cannot replace", &to))?;
    }
    Ok(())
}

/// Reads, builds and lays out the machines of the crate at `manifest` in
/// `dir`: the plan it followed.
pub fn stage(manifest: &Path, dir: &Path, release: bool) -> Result<Plan, StageError> {
    let plan = plan(manifest)?;
    let bins = build(&plan, release)?;
    lay_out(&plan, &bins, dir)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(machines: &str, bins: &[&str]) -> String {
        let targets: Vec<String> = bins
            .iter()
            .map(|b| format!(r#"{{"name":"{b}","kind":["bin"]}}"#))
            .collect();
        format!(
            r#"{{"target_directory":"/t","packages":[{{"manifest_path":"/nowhere/Cargo.toml","targets":[{}],"metadata":{machines}}}]}}"#,
            targets.join(",")
        )
    }

    #[test]
    fn the_table_names_each_machine_and_its_binary() {
        let json = metadata(
            r#"{"wink":{"machines":{"b/Two":"two","a/One":"one"}}}"#,
            &["one", "two"],
        );
        let plan = read_plan(Path::new("/nowhere/Cargo.toml"), &json).unwrap();
        let machines: Vec<(String, String)> = plan
            .machines
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect();
        assert_eq!(
            machines,
            [
                ("a/One".to_owned(), "one".to_owned()),
                ("b/Two".to_owned(), "two".to_owned())
            ]
        );
        assert_eq!(plan.target_dir, Path::new("/t"));
    }

    #[test]
    fn a_missing_table_a_bad_name_or_binary_says_what_to_fix() {
        let m = Path::new("/nowhere/Cargo.toml");
        let none = read_plan(m, &metadata("null", &["one"])).unwrap_err();
        assert!(
            none.to_string()
                .contains("[package.metadata.wink.machines]"),
            "{none}"
        );
        let bad = read_plan(
            m,
            &metadata(r#"{"wink":{"machines":{"../x":"one"}}}"#, &["one"]),
        );
        assert!(bad.unwrap_err().to_string().contains("`../x`"));
        let tag = read_plan(
            m,
            &metadata(r#"{"wink":{"machines":{"a/B#t":"one"}}}"#, &["one"]),
        );
        assert!(tag
            .unwrap_err()
            .to_string()
            .contains("leave the `#tag` out"));
        let bin = read_plan(
            m,
            &metadata(r#"{"wink":{"machines":{"a/B":"three"}}}"#, &["one"]),
        );
        assert_eq!(
            bin.unwrap_err().to_string(),
            "/nowhere/Cargo.toml: machine `a/B` is served by binary `three`, which the crate does not have (its binaries: one)"
        );
    }
}
