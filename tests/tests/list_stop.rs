//! `wink list` shows the running machines; `wink stop` stops one, its parent
//! is told `exited` (for a machine `wink start` started, the server is the
//! parent and relays it), and it leaves the list.

use std::time::Duration;

use wink_tests::{is_running, Server, ServerOptions, Staged, PATIENCE};

#[test]
fn list_shows_machines_and_stop_removes_one_telling_its_parent() {
    let mut server = Server::start().expect("server");
    // The server is echo's parent; `wink start -f` follows it and prints
    // the lifecycle the server relays.
    let mut follow = server
        .spawn_wink(&["start", "-f", "echo/Echo"])
        .expect("wink start -f");
    let started = follow
        .expect_line("started echo/Echo", PATIENCE)
        .expect("echo starts");
    let echo = wink_tests::started_address(&started.text).expect("echo's address");
    let echo_pid = server.registered(echo).expect("echo registers");
    let (switch, switch_pid) = server
        .start_machine("switch/Switch", &[])
        .expect("start switch");

    let rows = server.list().expect("wink list");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let echo_row = rows
        .iter()
        .find(|r| r.name == "echo/Echo")
        .expect("echo is listed");
    let switch_row = rows
        .iter()
        .find(|r| r.name == "switch/Switch")
        .expect("switch is listed");
    assert_eq!(echo_row.address, echo.to_string());
    assert_eq!(switch_row.address, switch.to_string());
    assert_eq!(echo_row.pid, echo_pid);
    assert_eq!(switch_row.pid, switch_pid);
    for row in &rows {
        assert!(is_running(row.pid), "{row:?} runs");
        assert!(row.uptime.ends_with('s'), "{row:?}");
        assert_eq!(row.parent, "server", "started by `wink start`: {row:?}");
    }
    server
        .expect_all(
            &["Forked: ", &echo_row.pid.to_string(), "echo/Echo"],
            PATIENCE,
        )
        .expect("the pid is the one the server forked");

    // Stop echo by `:<port>`: wink says so, and the follower hears the
    // `exited` its parent, the server, was told, and ends with status 0.
    let port = format!(":{}", echo.port());
    let out = server.wink_ok(&["stop", &port]).expect("wink stop");
    assert_eq!(out.stdout, format!("stopped {echo}\n"), "{out}");
    follow
        .expect_line(&format!("{echo} exited echo/Echo stopped"), PATIENCE)
        .expect("the parent is told exited");
    let status = follow.wait(PATIENCE).expect("the follower ends");
    assert!(status.success(), "wink start -f: {status}");
    assert!(!is_running(echo_row.pid), "echo's process is gone");

    let rows = server.list().expect("wink list");
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["switch/Switch"]
    );

    // Stopping it again is an error: the server no longer has it.
    let out = server
        .wink(&["stop", &port])
        .expect("run wink")
        .failure()
        .expect("stop of a stopped machine fails");
    assert!(
        out.stderr.contains(&format!(
            "no machine started by this server listens on port {}",
            echo.port()
        )),
        "{out}"
    );
}

#[test]
fn stopping_a_child_tells_its_machine_parent_exited_not_errored() {
    // family/Child served by the echo binary: a child that lives until
    // stopped. A long retry keeps the parent from starting another.
    let staged = Staged::with(&[("family/Child", "echo")]).expect("stage");
    let mut server = Server::serve(staged, ServerOptions::default()).expect("server");
    let (parent, _) = server
        .start_machine("family/Parent", &["600000"])
        .expect("start family/Parent");
    let started = server
        .expect_all(&["Parent: ", "family/Child has started"], PATIENCE)
        .expect("the child starts");
    let child = started
        .text
        .split_ascii_whitespace()
        .nth(1)
        .expect("its address")
        .to_owned();

    // The list names the parent of each machine.
    let child_pid = server
        .registered(child.parse().expect("an address"))
        .expect("the child registers");
    let rows = server.list().expect("list");
    let child_row = rows
        .iter()
        .find(|r| r.address == child)
        .unwrap_or_else(|| panic!("{child} in {rows:?}"));
    assert_eq!(child_row.name, "family/Child");
    assert_eq!(child_row.pid, child_pid);
    assert_eq!(child_row.parent, parent.to_string());

    let mark = server.process().cursor();
    server.wink_ok(&["stop", &child]).expect("wink stop");
    server
        .expect_line(
            &format!("Parent: {child} family/Child has exited (stopped)"),
            PATIENCE,
        )
        .expect("the parent is told exited");
    server.process().set_cursor(mark);
    server
        .process()
        .refute("error report for a stopped child", |l| {
            l.contains("has errored")
        })
        .expect("stopping is not an error");
    server
        .expect_all(
            &["Reaped: ", &child_row.pid.to_string(), "exit status 0"],
            PATIENCE,
        )
        .expect("the child exits 0");
    let rows = server.list().expect("list");
    assert!(rows.iter().all(|r| r.address != child), "{rows:?}");
}

#[test]
fn start_on_a_port_in_use_stops_the_machine_there_first() {
    let mut server = Server::start().expect("server");
    let (echo, echo_pid) = server.start_machine("echo/Echo", &[]).expect("echo");
    let port = format!(":{}", echo.port());
    let out = server
        .wink_ok(&["start", "switch/Switch", &port])
        .expect("start switch on echo's port");
    assert_eq!(
        out.stdout,
        format!("{echo} started switch/Switch\n"),
        "{out}"
    );
    assert!(!is_running(echo_pid), "echo was stopped");
    let rows = server.list().expect("list");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].name, "switch/Switch");
    assert_eq!(rows[0].address, echo.to_string());
}

#[test]
fn stop_escalates_to_sigkill_for_a_machine_that_ignores_sigterm() {
    let staged = Staged::new().expect("stage");
    let options = ServerOptions::default().grace(Duration::from_millis(300));
    let mut server = Server::serve(staged, options).expect("server");
    let (echo, pid) = server.start_machine("echo/Echo", &[]).expect("echo");
    // A stopped process does not act on SIGTERM until it continues.
    wink_tests::signal(pid, wink_tests::Signal::STOP).expect("SIGSTOP");
    let out = server.wink_ok(&["stop", &echo.to_string()]).expect("stop");
    assert_eq!(out.stdout, format!("stopped {echo}\n"), "{out}");
    server
        .expect_all(&[&pid.to_string(), "ignored SIGTERM: SIGKILL"], PATIENCE)
        .expect("escalation");
    server
        .expect_all(
            &["Reaped: ", &pid.to_string(), "killed by signal 9"],
            PATIENCE,
        )
        .expect("killed");
    assert!(!is_running(pid));
}

#[test]
fn stopping_a_parent_stops_its_children() {
    let staged = Staged::with(&[("family/Child", "echo")]).expect("stage");
    let mut server = Server::serve(staged, ServerOptions::default()).expect("server");
    let (parent, parent_pid) = server
        .start_machine("family/Parent", &["600000"])
        .expect("start family/Parent");
    let register = server
        .expect_registration("family/Child")
        .expect("the child registers");
    let (child, child_pid) = (register.address, register.pid);
    // The parent's line and the server's come from two processes, in
    // either order.
    server.process().set_cursor(0);
    server
        .expect_line(
            &format!("Parent: {child} family/Child has started"),
            PATIENCE,
        )
        .expect("the parent knows it");

    server
        .wink_ok(&["stop", &parent.to_string()])
        .expect("stop the parent");
    server.process().set_cursor(0);
    server
        .expect_all(
            &["Reaped: ", &parent_pid.to_string(), "exit status 0"],
            PATIENCE,
        )
        .expect("the parent exits");
    server.process().set_cursor(0);
    server
        .process()
        .expect(
            &format!("`< {parent} stop <id> {}`", child.port()),
            PATIENCE,
            |l| {
                l.starts_with(&format!("< {parent} stop "))
                    && l.ends_with(&format!(" {}", child.port()))
            },
        )
        .expect("the exiting parent asks the server to stop its child");
    server
        .expect_all(
            &["Reaped: ", &child_pid.to_string(), "exit status 0"],
            PATIENCE,
        )
        .expect("the child is stopped in order");
    assert!(server.list().expect("list").is_empty());
}
