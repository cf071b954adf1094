//! `wink tree` and `wink status` against a real server running
//! `family/Parent` and a greeter pair, `greeter/Host` and its
//! `greeter/Greeter#Ada` (both children here are echoes, which live on
//! instead of failing or greeting and exiting): the tree draws each child
//! under its parent, every machine with its state.

use wink_tests::{Error, Result, Server, ServerOptions, Staged};

#[test]
fn tree_draws_each_child_under_its_parent_with_states() -> Result<()> {
    let staged = Staged::with(&[("family/Child", "echo"), ("greeter/Greeter", "echo")])?;
    let mut server = Server::serve(staged, ServerOptions::default())?;
    let (parent, _) = server.start_machine("family/Parent", &["100"])?;
    let child = server.expect_registration("family/Child")?.address;
    let (host, _) = server.start_machine("greeter/Host", &["0", "Ada"])?;
    let greeter = server.expect_registration("greeter/Greeter#Ada")?.address;

    let out = server.wink_ok(&["tree"])?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    eprintln!("{}", out.stdout);
    let at = |needle: String| {
        lines
            .iter()
            .position(|l| l.contains(&needle))
            .ok_or_else(|| Error::new(format!("no `{needle}` in\n{}", out.stdout)))
    };
    let server_line = at(format!("{} (server, ", server.address()))?;
    let parent_line = at(format!("family/Parent  {parent}  Main  up "))?;
    let child_line = at(format!("family/Child  {child}  Echoing  up "))?;
    let host_line = at(format!("greeter/Host  {host}  Hosting  up "))?;
    let greeter_line = at(format!("greeter/Greeter#Ada  {greeter}  Echoing  up "))?;
    assert_eq!(
        greeter_line,
        host_line + 1,
        "the greeter right under its host"
    );
    assert_eq!(server_line, 0);
    assert_eq!(
        child_line,
        parent_line + 1,
        "the child right under its parent"
    );
    assert!(
        lines[child_line].starts_with("│  └─ ") || lines[child_line].starts_with("   └─ "),
        "{}",
        out.stdout
    );
    assert!(lines[parent_line].starts_with("├─ ") || lines[parent_line].starts_with("└─ "));
    assert!(lines[host_line].starts_with("├─ ") || lines[host_line].starts_with("└─ "));

    let json = server.wink_ok(&["tree", "--json"])?;
    let value: serde_json::Value =
        serde_json::from_str(&json.stdout).map_err(|e| Error::new(format!("{e}: {json}")))?;
    let machines = value[0]["machines"]
        .as_array()
        .ok_or_else(|| Error::new(format!("no machines in {json}")))?;
    let family = machines
        .iter()
        .find(|m| m["name"] == "family/Parent")
        .ok_or_else(|| Error::new(format!("no family/Parent in {json}")))?;
    assert_eq!(family["state"], "Main");
    assert_eq!(family["children"][0]["name"], "family/Child");

    let status = server.wink_ok(&["status", &parent.to_string()])?;
    assert!(status.stdout.contains("state       Main"), "{status}");
    assert!(
        status.stdout.contains("children    1 (0 restarts)"),
        "{status}"
    );
    Ok(())
}
