//! `cargo xtask image [--tag <tag>]`: the container image of
//! `deploy/Containerfile`, built with a daemonless builder (podman, else
//! buildah), then checked without running it: its entrypoint, and that
//! its one layer holds the server, the command and every example machine
//! as static executables.
//!
//! The binaries are built for the host's target with `crt-static`, so
//! they need nothing from the image (`FROM scratch`), and stripped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{fail, workspace, Context, Error, Result};

/// The target the static binaries are built for.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Static, and without symbols or debug information: the image holds
/// fifteen binaries.
const RUSTFLAGS: &str = "-C target-feature=+crt-static -C strip=symbols";

/// What the image's entrypoint must be.
const ENTRYPOINT: &str = r#"["/usr/local/bin/wink-server","serve","/srv/wink"]"#;

/// Builds, lays out, builds the image and checks it; prints what it found.
pub fn image(tag: &str) -> Result<()> {
    let builder = builder()?;
    let bins = build_static()?;
    let context = tempfile::Builder::new()
        .prefix("wink-image-")
        .tempdir()
        .context(|| "cannot create a temporary directory".to_owned())?;
    lay_out(&bins, context.path())?;
    let containerfile = workspace()?.join("deploy").join("Containerfile");
    eprintln!(
        "$ {builder} build -f {} -t {tag} <context>",
        containerfile.display()
    );
    let mut build = Command::new(builder);
    match builder {
        "buildah" => build.arg("bud"),
        _ => build.arg("build"),
    };
    let status = build
        .arg("-f")
        .arg(&containerfile)
        .arg("-t")
        .arg(tag)
        .arg(context.path())
        .status()
        .context(|| format!("cannot run {builder}"))?;
    if !status.success() {
        return fail(format!("{builder} build failed ({status})"));
    }
    check(builder, tag)
}

/// `podman` or `buildah`, whichever is installed.
fn builder() -> Result<&'static str> {
    for builder in ["podman", "buildah"] {
        let found = Command::new(builder)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Ok(builder);
        }
    }
    fail("neither podman nor buildah is installed: the image needs a daemonless builder".to_owned())
}

/// The server, the command and the example machines, statically linked:
/// the directory they are in.
fn build_static() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = [
        "build",
        "--release",
        "--target",
        TARGET,
        "-p",
        "wink-server",
        "-p",
        "wink-cli",
        "-p",
        "wink-examples",
    ];
    eprintln!("$ RUSTFLAGS='{RUSTFLAGS}' cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .current_dir(workspace()?)
        .args(args)
        .env("RUSTFLAGS", RUSTFLAGS)
        .status()
        .context(|| "cannot run cargo".to_owned())?;
    if !status.success() {
        return fail(format!("cargo build failed ({status})"));
    }
    Ok(super::target_dir()?.join(TARGET).join("release"))
}

/// `bin/wink-server`, `bin/wink` and `machines/<package>/<Executable>` in
/// `context`, each checked to be static.
fn lay_out(bins: &Path, context: &Path) -> Result<()> {
    let bin = context.join("bin");
    fs::create_dir_all(&bin).context(|| format!("cannot create {}", bin.display()))?;
    for name in ["wink-server", "wink"] {
        let from = bins.join(name);
        is_static(&from)?;
        fs::copy(&from, bin.join(name)).context(|| format!("cannot copy {}", from.display()))?;
    }
    let plan =
        wink_cli::stage::plan(&super::examples_manifest()?).map_err(|e| Error(e.to_string()))?;
    for (_, binary) in &plan.machines {
        is_static(&bins.join(binary))?;
    }
    wink_cli::stage::lay_out(&plan, bins, &context.join("machines"))
        .map_err(|e| Error(e.to_string()))
}

/// An executable that needs no dynamic loader: it has no `PT_INTERP`
/// program header (an ELF64 little-endian file, as the target's are).
fn is_static(path: &Path) -> Result<()> {
    let bytes = fs::read(path).context(|| format!("cannot read {}", path.display()))?;
    let field = |at: usize, len: usize| -> Option<u64> {
        let slice = bytes.get(at..at + len)?;
        let mut value = 0u64;
        for (i, b) in slice.iter().enumerate() {
            value |= u64::from(*b) << (8 * i);
        }
        Some(value)
    };
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) || bytes.get(4) != Some(&2) {
        return fail(format!("{} is not an ELF64 executable", path.display()));
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (field(0x20, 8), field(0x36, 2), field(0x38, 2))
    else {
        return fail(format!("{}: a truncated ELF header", path.display()));
    };
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).unwrap_or(usize::MAX);
        if field(at, 4) == Some(3) {
            return fail(format!(
                "{} is dynamically linked: the image has no loader",
                path.display()
            ));
        }
    }
    Ok(())
}

/// The image's entrypoint, and the files of its layer.
fn check(builder: &str, tag: &str) -> Result<()> {
    let inspect = Command::new(builder)
        .args(["inspect", "--format", "{{json .Config.Entrypoint}}", tag])
        .output()
        .context(|| format!("cannot run {builder} inspect"))?;
    let entrypoint = String::from_utf8_lossy(&inspect.stdout).replace(' ', "");
    if entrypoint.trim() != ENTRYPOINT {
        return fail(format!(
            "the image's entrypoint is {}, not {ENTRYPOINT}",
            entrypoint.trim()
        ));
    }
    let dir = tempfile::tempdir().context(|| "cannot create a temporary directory".to_owned())?;
    let archive = dir.path().join("image.tar");
    let saved = match builder {
        "buildah" => Command::new("buildah")
            .args(["push", tag])
            .arg(format!("docker-archive:{}", archive.display()))
            .status(),
        _ => Command::new("podman")
            .args(["save", "--format", "docker-archive", "-o"])
            .arg(&archive)
            .arg(tag)
            .status(),
    }
    .context(|| format!("cannot save {tag}"))?;
    if !saved.success() {
        return fail(format!("saving {tag} failed ({saved})"));
    }
    let files = layer_files(&archive, dir.path())?;
    let mut wanted = vec![
        "usr/local/bin/wink-server".to_owned(),
        "usr/local/bin/wink".to_owned(),
    ];
    let plan =
        wink_cli::stage::plan(&super::examples_manifest()?).map_err(|e| Error(e.to_string()))?;
    wanted.extend(
        plan.machines
            .iter()
            .map(|(name, _)| format!("srv/wink/{}", name.binary_path().display())),
    );
    let missing: Vec<&String> = wanted.iter().filter(|w| !files.contains(w)).collect();
    if !missing.is_empty() {
        return fail(format!("the image lacks {missing:?}; it holds {files:?}"));
    }
    println!(
        "image {tag}: entrypoint {ENTRYPOINT}, {} files:",
        files.len()
    );
    for file in &files {
        println!("  /{file}");
    }
    Ok(())
}

/// The files (not directories) of every layer of the docker archive
/// `archive`, unpacked in `dir`.
fn layer_files(archive: &Path, dir: &Path) -> Result<Vec<String>> {
    let unpacked = dir.join("unpacked");
    fs::create_dir_all(&unpacked).context(|| "cannot create a directory".to_owned())?;
    tar(&[
        "-xf",
        &archive.to_string_lossy(),
        "-C",
        &unpacked.to_string_lossy(),
    ])?;
    let manifest = fs::read_to_string(unpacked.join("manifest.json"))
        .context(|| "the image archive has no manifest.json".to_owned())?;
    let mut files = Vec::new();
    for layer in manifest
        .split('"')
        .filter(|part| part.ends_with(".tar") || part.ends_with("/layer.tar"))
    {
        let listing = tar(&["-tf", &unpacked.join(layer).to_string_lossy()])?;
        files.extend(
            listing
                .lines()
                .map(|l| l.trim_start_matches("./").to_owned())
                .filter(|l| !l.is_empty() && !l.ends_with('/')),
        );
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn tar(args: &[&str]) -> Result<String> {
    let out = Command::new("tar")
        .args(args)
        .output()
        .context(|| "cannot run tar".to_owned())?;
    if !out.status.success() {
        return fail(format!(
            "tar {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
