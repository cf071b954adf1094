//! `wink stage` with a crate of the user's own, outside this workspace:
//! it reads the crate's `[package.metadata.wink.machines]`, builds the
//! binary, lays it out as `<dir>/mine/Hello`, and a real server then runs
//! it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wink_tests::{binary, target_dir, Error, Result, Server, ServerOptions, Staged};

/// Building the crate (wink and its dependencies, the first time) takes a
/// while on two cores.
const BUILD: Duration = Duration::from_secs(600);

/// The workspace this test belongs to.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::new(format!("{}: {e}", parent.display())))?;
    }
    fs::write(path, text).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

/// A crate of its own (its own workspace) with one machine, `mine/Hello`.
fn user_crate(dir: &Path) -> Result<PathBuf> {
    let wink = workspace().join("wink");
    write(
        &dir.join("Cargo.toml"),
        &format!(
            r#"[package]
name = "mine"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
wink = {{ path = "{}" }}

[package.metadata.wink.machines]
"mine/Hello" = "hello"

[workspace]
"#,
            wink.display()
        ),
    )?;
    write(
        &dir.join("src/bin/hello.rs"),
        r#"#[wink::machine]
mod hello {
    #[derive(Default)]
    pub struct Hello;

    pub enum State {
        #[initial]
        Here,
    }

    impl Hello {
        #[receive(Here, "hi")]
        fn hi(&mut self, cx: &mut Context<Self>, name: String) {
            cx.reply(format!("hello {name}"));
        }
    }
}

fn main() -> std::process::ExitCode {
    wink::run(hello::Hello)
}
"#,
    )?;
    // The workspace's versions of every dependency, already downloaded.
    fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| Error::new(format!("Cargo.lock: {e}")))?;
    Ok(dir.join("Cargo.toml"))
}

#[test]
fn a_crate_outside_the_workspace_is_staged_and_served() -> Result<()> {
    let source = tempfile::tempdir().map_err(|e| Error::new(e.to_string()))?;
    let manifest = user_crate(source.path())?;
    let staged = Staged::new()?;
    let dir = staged.path().to_string_lossy().into_owned();
    // Its own target directory, kept between runs, so the dependencies are
    // built once.
    let target = target_dir()?.join("..").join("stage-test");
    let out = run_with_env(
        &binary("wink")?,
        &[
            "stage",
            &dir,
            "--debug",
            "--manifest-path",
            &manifest.to_string_lossy(),
        ],
        &[
            ("CARGO_TARGET_DIR", target.as_os_str()),
            ("CARGO_NET_OFFLINE", "true".as_ref()),
        ],
    )?;
    assert!(
        out.contains("staged 1 machines") && out.contains("mine/Hello (binary hello)"),
        "{out}"
    );
    assert!(staged.path().join("mine/Hello").is_file());

    let mut server = Server::serve(staged, ServerOptions::default())?;
    let (hello, _) = server.start_machine("mine/Hello", &[])?;
    let answer = server.wink_ok(&[
        "send",
        "-r",
        "1",
        &hello.to_string(),
        r#"hi "Ada Lovelace""#,
    ])?;
    assert_eq!(answer.stdout, "hello Ada Lovelace\n", "{answer}");
    Ok(())
}

/// `program args…` with `env` set, to success within [`BUILD`]: its
/// standard output.
fn run_with_env(program: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<String> {
    let mut command = std::process::Command::new(program);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = wink_tests::Process::spawn("wink stage", command)?;
    let status = child.wait(BUILD)?;
    let lines: Vec<String> = child.lines().iter().map(ToString::to_string).collect();
    if !status.success() {
        return Err(Error::new(format!(
            "wink stage failed ({status}):\n{}",
            lines.join("\n")
        )));
    }
    Ok(lines.join("\n"))
}
