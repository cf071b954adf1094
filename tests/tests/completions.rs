//! `wink completions <shell>` and `wink-server completions <shell>` print
//! scripts a shell takes, and bash's completes the subcommands.

use std::path::Path;
use std::time::Duration;

use wink_tests::{binary, run, Error, Result};

const PATIENCE: Duration = Duration::from_secs(20);

/// What bash offers after `words` typed (the last one being completed),
/// with `program`'s completion script loaded.
fn bash_completes(program: &str, words: &[&str]) -> Result<Vec<String>> {
    let script = run(&binary(program)?, &["completions", "bash"], PATIENCE)?.success()?;
    let dir = tempfile::tempdir().map_err(|e| Error::new(e.to_string()))?;
    let file = dir.path().join("completion.bash");
    std::fs::write(&file, &script.stdout).map_err(|e| Error::new(e.to_string()))?;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    // Bash calls the function with the command, the word being completed
    // and the one before it.
    let (cur, prev) = (words[words.len() - 1], words[words.len().saturating_sub(2)]);
    let check = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; _{} '{program}' '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        program.replace('-', "__")
    );
    let out = run(Path::new("bash"), &["-c", &check], PATIENCE)?.success()?;
    Ok(out.stdout.lines().map(str::to_owned).collect())
}

#[test]
fn the_scripts_parse_and_complete_the_subcommands() -> Result<()> {
    for program in ["wink", "wink-server"] {
        for shell in ["bash", "zsh", "fish"] {
            let out = run(&binary(program)?, &["completions", shell], PATIENCE)?.success()?;
            assert!(
                out.stdout.contains(program),
                "{program} {shell}:\n{}",
                out.stdout
            );
        }
        let script = run(&binary(program)?, &["completions", "bash"], PATIENCE)?.success()?;
        let dir = tempfile::tempdir().map_err(|e| Error::new(e.to_string()))?;
        let file = dir.path().join("c.bash");
        std::fs::write(&file, &script.stdout).map_err(|e| Error::new(e.to_string()))?;
        run(
            Path::new("bash"),
            &["-n", &file.to_string_lossy()],
            PATIENCE,
        )?
        .success()?;
    }
    let offered = bash_completes("wink", &["wink", "up"])?;
    assert_eq!(offered, ["upgrade"]);
    let offered = bash_completes("wink", &["wink", "st"])?;
    for want in ["start", "stop", "stage", "status"] {
        assert!(offered.iter().any(|o| o == want), "{offered:?}");
    }
    let offered = bash_completes("wink-server", &["wink-server", "se"])?;
    assert_eq!(offered, ["serve"]);
    Ok(())
}

#[test]
fn each_program_writes_its_manual_pages() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::new(e.to_string()))?;
    let path = dir.path().to_string_lossy().into_owned();
    for program in ["wink", "wink-server"] {
        run(&binary(program)?, &["man", &path], PATIENCE)?.success()?;
    }
    for (page, says) in [
        ("wink.1", "wink \\- "),
        ("wink-upgrade.1", "Replace a machine"),
        ("wink-tree.1", "tree of who"),
        ("wink-server.1", "wink\\-server \\- "),
        ("wink-server-serve.1", "Serve the machines"),
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .map_err(|e| Error::new(format!("{page}: {e}")))?;
        assert!(
            text.contains(".TH ") && text.contains(".SH NAME"),
            "{page}:\n{text}"
        );
        assert!(text.contains(says), "{page} lacks `{says}`:\n{text}");
    }
    Ok(())
}
