//! The diagrams a machine binary draws of itself (`--describe`) show its
//! transitions: each example's DOT is rendered by Graphviz (`dot`, which
//! `.ci/run` installs), and the drawing has an edge for each transition;
//! the text and Mermaid forms list them too.

use std::path::Path;
use std::time::Duration;

use wink_tests::{binary, run, Error, Result};

const PATIENCE: Duration = Duration::from_secs(20);

/// `bin --describe <format>`.
fn describe(bin: &str, format: &str) -> Result<String> {
    let out = run(&binary(bin)?, &["--describe", format], PATIENCE)?.success()?;
    Ok(out.stdout)
}

/// The titles of the edges Graphviz drew for `dot`: `From->To`.
fn drawn_edges(dot: &str) -> Result<Vec<String>> {
    let dir = tempfile::tempdir().map_err(|e| Error::new(format!("a temporary directory: {e}")))?;
    let file = dir.path().join("machine.dot");
    std::fs::write(&file, dot).map_err(|e| Error::new(format!("{}: {e}", file.display())))?;
    let svg = run(
        Path::new("dot"),
        &["-Tsvg", &file.to_string_lossy()],
        PATIENCE,
    )?
    .success()?;
    Ok(svg
        .stdout
        .split("<title>")
        .skip(1)
        .filter_map(|t| t.split_once("</title>").map(|(title, _)| title))
        .filter(|t| t.contains("&#45;&gt;"))
        .map(|t| t.replace("&#45;&gt;", "->"))
        .collect())
}

/// Each of `edges` (`From->To`) is drawn, and listed in the text and
/// Mermaid forms with its label.
fn shows(bin: &str, edges: &[(&str, &str, &str)]) -> Result<()> {
    let drawn = drawn_edges(&describe(bin, "dot")?)?;
    let text = describe(bin, "text")?;
    let mermaid = describe(bin, "mermaid")?;
    for (from, on, to) in edges {
        let edge = format!("{from}->{to}");
        assert!(drawn.contains(&edge), "{bin}: no edge {edge} in {drawn:?}");
        let line = format!("  {from} --{on}--> {to}");
        assert!(
            text.lines().any(|l| l == line),
            "{bin}: no `{line}` in\n{text}"
        );
        let line = format!("  {from} --> {to} : {on}");
        assert!(
            mermaid.lines().any(|l| l == line),
            "{bin}: no `{line}` in\n{mermaid}"
        );
    }
    // Every transition the text lists is drawn: nothing more, nothing less.
    let listed = text.lines().filter(|l| l.contains("--> ")).count();
    assert_eq!(listed, edges.len(), "{bin}:\n{text}");
    assert_eq!(
        drawn.len(),
        edges.len() + 1,
        "{bin}: the start arrow and one per transition: {drawn:?}"
    );
    Ok(())
}

#[test]
fn switch_draws_its_transitions() -> Result<()> {
    shows("switch", &[("Off", "on", "On"), ("Off", "off", "Off")])
}

#[test]
fn family_draws_its_transitions() -> Result<()> {
    shows("family-parent", &[("Main", "retry", "Main")])
}

#[test]
fn player_draws_its_transitions() -> Result<()> {
    shows(
        "player",
        &[
            ("Powered", "play", "Playing"),
            ("Powered", "eject", "Powered"),
            ("Active", "stop", "Idle"),
            ("Playing", "pause", "Paused"),
            ("Playing", "restart", "Playing"),
            ("Paused", "resume", "Playing"),
        ],
    )
}

#[test]
fn a_composite_state_is_labelled_once() -> Result<()> {
    let dot = describe("player", "dot")?;
    let labels = dot.matches("label=<Powered").count();
    assert_eq!(labels, 1, "{dot}");
    Ok(())
}
