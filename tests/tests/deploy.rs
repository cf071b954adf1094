//! What `deploy/` ships is checked offline: the systemd unit passes
//! `systemd-analyze verify` (with `ExecStart` pointing at this build's
//! `wink-server`), its sandboxing rates as `OK` or better with
//! `systemd-analyze security`, and the options it passes exist.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wink_tests::{binary, run, Error, Result};

const PATIENCE: Duration = Duration::from_secs(60);

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// The unit, with its `ExecStart` binary replaced by this build's, in a
/// temporary directory (`systemd-analyze` checks the binary exists).
fn unit_for_this_build(dir: &Path) -> Result<PathBuf> {
    let unit = std::fs::read_to_string(deploy("wink-server.service"))
        .map_err(|e| Error::new(format!("deploy/wink-server.service: {e}")))?;
    let server = binary("wink-server")?;
    let unit = unit.replace("/usr/local/bin/wink-server", &server.to_string_lossy());
    let file = dir.join("wink-server.service");
    std::fs::write(&file, unit).map_err(|e| Error::new(e.to_string()))?;
    Ok(file)
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::new(e.to_string()))?;
    let unit = unit_for_this_build(dir.path())?;
    let unit = unit.to_string_lossy();
    let verify = run(Path::new("systemd-analyze"), &["verify", &unit], PATIENCE)?;
    assert!(
        verify.status.success() && verify.stderr.trim().is_empty(),
        "systemd-analyze verify: {verify}"
    );
    let security = run(
        Path::new("systemd-analyze"),
        &["security", "--offline=yes", "--no-pager", &unit],
        PATIENCE,
    )?;
    let text = format!("{}{}", security.stdout, security.stderr);
    let exposure: f64 = text
        .split("Overall exposure level for wink-server.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|level| level.parse().ok())
        .ok_or_else(|| Error::new(format!("no exposure level in:\n{text}")))?;
    assert!(exposure <= 2.5, "exposure {exposure}:\n{text}");
    Ok(())
}

#[test]
fn the_units_command_line_is_one_wink_server_takes() -> Result<()> {
    let unit = std::fs::read_to_string(deploy("wink-server.service"))
        .map_err(|e| Error::new(e.to_string()))?;
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .ok_or_else(|| Error::new("no ExecStart"))?;
    let help = run(&binary("wink-server")?, &["serve", "--help"], PATIENCE)?.success()?;
    for option in exec.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(
            help.stdout.contains(option),
            "`{option}` is no option of wink-server serve:\n{}",
            help.stdout
        );
    }
    assert!(exec.contains(" serve "), "{exec}");
    Ok(())
}

#[test]
fn the_daemonset_validates_against_the_kubernetes_schemas() -> Result<()> {
    let manifest = deploy("daemonset.yaml");
    let out = run(
        Path::new("kubernetes-validate"),
        &["--strict", &manifest.to_string_lossy()],
        PATIENCE,
    )?;
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(out.status.success(), "kubernetes-validate:\n{said}");
    for resource in ["namespace/wink", "daemonset/wink-server"] {
        assert!(
            said.contains(&format!("passed for resource {resource}")),
            "{said}"
        );
    }
    // The container's command is one wink-server takes.
    let text = std::fs::read_to_string(&manifest).map_err(|e| Error::new(e.to_string()))?;
    let help = run(&binary("wink-server")?, &["serve", "--help"], PATIENCE)?.success()?;
    for option in text.lines().filter_map(|l| l.trim().strip_prefix("- --")) {
        assert!(
            help.stdout.contains(&format!("--{option}")),
            "--{option}:\n{}",
            help.stdout
        );
    }
    Ok(())
}
