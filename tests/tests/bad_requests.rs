//! Bad requests get an `error …` reply naming the problem, change nothing,
//! run nothing outside the served directory, and the server keeps serving.

use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::Duration;

use wink_tests::{Client, Server, PATIENCE};

const ASK: Duration = Duration::from_secs(5);

#[test]
fn each_bad_request_gets_an_error_reply_and_the_server_keeps_serving() {
    let mut server = Server::start().expect("server");
    let dir = server.staged().path().to_owned();
    // Traps inside the served directory: names that resolve outside it, a
    // file that is not executable, a directory.
    fs::create_dir_all(dir.join("evil")).expect("mkdir");
    symlink("/bin/sh", dir.join("evil/Sh")).expect("symlink to /bin/sh");
    symlink("/bin", dir.join("bin")).expect("symlink to /bin");
    symlink("../../../bin/sh", dir.join("evil/Up")).expect("relative symlink");
    fs::create_dir_all(dir.join("text")).expect("mkdir");
    fs::write(dir.join("text/Plain"), "#!/bin/sh\ntouch /tmp/never\n").expect("write");
    fs::set_permissions(dir.join("text/Plain"), fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::create_dir_all(dir.join("text/Dir")).expect("mkdir");

    let me = Client::new().expect("client");
    let mine = me.address().port();
    let mut me = me;
    let cases: Vec<(String, &str)> = vec![
        ("launch x/y".into(), "error unknown request `launch`"),
        ("   ".into(), "error empty request"),
        ("stop".into(), "error `stop` needs a port"),
        ("stop http".into(), "error `stop`: `http` is not a port"),
        ("stop 99999".into(), "error `stop`: `99999` is not a port"),
        ("stop -1".into(), "error `stop`: `-1` is not a port"),
        (
            "stop 1".into(),
            "error stop: no machine started by this server listens on port 1",
        ),
        (
            format!("stop {}", server.address().port()),
            "error stop: no machine started by this server listens on port",
        ),
        ("start".into(), "error `start` needs a machine name"),
        (
            "start ../../bin/sh".into(),
            "error `start`: machine name `../../bin/sh`",
        ),
        (
            "start /bin/sh".into(),
            "error `start`: machine name `/bin/sh`",
        ),
        ("start sh".into(), "error `start`: machine name `sh`"),
        ("start evil/Sh".into(), "outside the served directory"),
        ("start evil/Up".into(), "outside the served directory"),
        ("start bin/sh".into(), "outside the served directory"),
        (
            "start nothere/Nope".into(),
            "error start `nothere/Nope`: no executable at",
        ),
        ("start text/Plain".into(), "is not an executable file"),
        ("start text/Dir".into(), "is not an executable file"),
        (
            "start echo/Echo :http".into(),
            "error `start`: `:http` is not a port",
        ),
        (
            "start echo/Echo :65536".into(),
            "error `start`: `:65536` is not a port",
        ),
        (
            "start echo/Echo nowhere:1".into(),
            "error `start`: address `nowhere:1`",
        ),
        ("register x".into(), "error `register` needs a pid"),
        (
            "register x -1".into(),
            "error `register`: `-1` is not a process id",
        ),
        (
            "register x 1".into(),
            "error register: pid 1 was not started by this server",
        ),
        // The refused register did not make this client a machine.
        (
            format!("stop {mine}"),
            "error stop: no machine started by this server listens on port",
        ),
        (
            "list everything".into(),
            "error `list` takes no more arguments",
        ),
    ];
    let mut wrong = Vec::new();
    for (request, expected) in &cases {
        match me.ask(server.address(), request, ASK) {
            Ok(reply) if reply.starts_with("error ") && reply.contains(expected) => {}
            Ok(reply) => wrong.push(format!("`{request}` → `{reply}`, expected `{expected}`")),
            Err(e) => wrong.push(format!("`{request}` → {e}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n{}",
        wrong.join("\n"),
        server.process().failure("server log")
    );

    // Garbage datagrams are dropped.
    let raw = UdpSocket::bind("127.0.0.1:0").expect("udp");
    for datagram in [&b""[..], b"start echo/Echo", &[0xff; 1500], &[0u8; 60000]] {
        raw.send_to(datagram, server.address().socket_addr())
            .expect("send");
    }

    // Still serving, nothing started, nothing run.
    let listed = me
        .ask_until(server.address(), "list", ASK, |r| r.starts_with("listed"))
        .expect("list after the bad requests");
    assert_eq!(listed, ["listed 0"]);
    assert!(server.list().expect("wink list").is_empty());
    assert!(
        server.process().try_wait().expect("wait").is_none(),
        "the server is running"
    );
    server
        .process()
        .refute("fork", |l| l.starts_with("Forked:"))
        .expect("nothing was started");
    assert!(server.staged().running().is_empty());
    let (echo, _) = server
        .start_machine("echo/Echo", &[])
        .expect("a good start");
    server
        .expect_line(&format!("{echo} echo/Echo started"), PATIENCE)
        .expect("and it works");
}

#[test]
fn wink_reports_refusals_with_exit_status_1_and_one_line() {
    let server = Server::start().expect("server");
    let dir = server.staged().path().to_owned();
    fs::create_dir_all(dir.join("evil")).expect("mkdir");
    symlink("/bin/sh", dir.join("evil/Sh")).expect("symlink");
    let at = server.address().to_string();
    for (args, expected) in [
        (
            &["start", "../../bin/sh"][..],
            "`start`: machine name `../../bin/sh`",
        ),
        (&["start", "/bin/sh"], "`start`: machine name `/bin/sh`"),
        (&["start", "evil/Sh"], "outside the served directory"),
        (&["start", "nothere/Nope"], "no executable at"),
        (
            &["stop", ":1"],
            "no machine started by this server listens on port 1",
        ),
    ] {
        let out = server
            .wink(args)
            .expect("run wink")
            .failure()
            .expect("exit status 1");
        assert!(out.stdout.is_empty(), "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(
            out.stderr.starts_with(&format!("wink: {at}: ")) && out.stderr.contains(expected),
            "expected `{expected}`: {out}"
        );
    }
    assert!(server.list().expect("list").is_empty());
}

#[test]
fn wink_without_a_server_fails_within_its_timeout() {
    let port = wink_tests::free_port().expect("port");
    let server = format!("127.0.0.1:{port}");
    let wink = wink_tests::binary("wink").expect("wink");
    let out = wink_tests::run(&wink, &["-s", &server, "-t", "0.3", "list"], PATIENCE)
        .expect("run")
        .failure()
        .expect("exit 1");
    assert_eq!(
        out.stderr,
        format!("wink: no answer from {server} within 0.3s (is it running?)\n"),
        "{out}"
    );
}
