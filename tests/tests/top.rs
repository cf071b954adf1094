//! `wink top` in a real terminal: tmux runs it against a server with a few
//! machines; the test reads the screen (`capture-pane`), presses keys
//! (`send-keys`) and sees the view change, then quits with `q`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wink_tests::{binary, Error, Result, Server, ServerOptions, Staged, PATIENCE};

/// A tmux server of the test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        Tmux {
            socket: format!("wink-top-test-{}", std::process::id()),
        }
    }

    fn tmux(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .map_err(|e| Error::new(format!("cannot run tmux: {e}")))
    }

    fn screen(&self) -> Result<String> {
        let out = self.tmux(&["capture-pane", "-p", "-t", "top"])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (bounded) until the screen shows every one of `wanted`.
    fn wait_for(&self, wanted: &[&str]) -> Result<String> {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen()?;
            if wanted.iter().all(|w| screen.contains(w)) {
                return Ok(screen);
            }
            if Instant::now() >= give_up {
                return Err(Error::new(format!(
                    "the screen never showed {wanted:?}:\n{screen}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_running(&self) -> Result<bool> {
        Ok(self.tmux(&["has-session", "-t", "top"])?.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[test]
fn top_shows_the_machines_sorts_on_a_key_and_quits_on_q() -> Result<()> {
    let staged = Staged::with(&[("family/Child", "echo")])?;
    let mut server = Server::serve(staged, ServerOptions::default())?;
    let (echo, _) = server.start_machine("echo/Echo", &[])?;
    let (parent, _) = server.start_machine("family/Parent", &["100"])?;
    server.expect_registration("family/Child")?;

    let wink = binary("wink")?;
    let command = format!(
        "{} --server {} top --interval 0.3",
        shell_word(&wink),
        server.address()
    );
    let tmux = Tmux::new();
    let started = tmux.tmux(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "150",
        "-y",
        "30",
        &command,
    ])?;
    assert!(
        started.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&started.stderr)
    );

    let screen = tmux.wait_for(&[
        "wink top: 3 machines on 1 servers, sorted by name",
        &echo.to_string(),
        &parent.to_string(),
        "family/Child",
        "Echoing",
        "Main",
    ])?;
    eprintln!("{screen}");
    tmux.tmux(&["send-keys", "-t", "top", "m"])?;
    tmux.wait_for(&["sorted by memory"])?;
    tmux.tmux(&["send-keys", "-t", "top", "c"])?;
    tmux.wait_for(&["sorted by cpu"])?;
    tmux.tmux(&["send-keys", "-t", "top", "q"])?;
    let give_up = Instant::now() + PATIENCE;
    while tmux.is_running()? {
        if Instant::now() >= give_up {
            return Err(Error::new(format!("`q` did not quit:\n{}", tmux.screen()?)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `path` as one word for tmux's shell.
fn shell_word(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}
