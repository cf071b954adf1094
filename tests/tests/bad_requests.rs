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
    let mine = me.address();
    let mut me = me;
    let port = server.address().port();
    let pid = std::process::id();
    let dir = dir.display();
    // Each request, and the reply it gets (`…` stands for any text; see
    // `fits`). A reply repeats the request's id, or `-` when the id could
    // not be read, and the request's word.
    let cases: Vec<(String, String)> = vec![
        (
            "launch 1 x/y".into(),
            "error - launch unknown request `launch`; expected one of start, stop, list, register, unregister".into(),
        ),
        (
            "   ".into(),
            "error - - empty request; expected one of start, stop, list, register, unregister".into(),
        ),
        ("stop".into(), "error - stop missing a request id".into()),
        (
            "stop x 1".into(),
            "error - stop `x` is not a request id (a number from 0 to 2^64-1)".into(),
        ),
        (
            "stop -1 1".into(),
            "error - stop `-1` is not a request id (a number from 0 to 2^64-1)".into(),
        ),
        ("stop 3".into(), "error 3 stop missing a port".into()),
        (
            "stop 4 http".into(),
            "error 4 stop `http` is not a port (0-65535)".into(),
        ),
        (
            "stop 5 99999".into(),
            "error 5 stop `99999` is not a port (0-65535)".into(),
        ),
        (
            "stop 6 -1".into(),
            "error 6 stop `-1` is not a port (0-65535)".into(),
        ),
        (
            "stop 7 1".into(),
            "error 7 stop no machine started by this server listens on port 1".into(),
        ),
        (
            format!("stop 8 {port}"),
            format!("error 8 stop no machine started by this server listens on port {port}"),
        ),
        (
            "stop 9 1 2 3".into(),
            "error 9 stop unexpected words after the last argument: 3".into(),
        ),
        (
            "stop 9 1 soon".into(),
            "error 9 stop `soon` is not a grace period in milliseconds, at most 3600000".into(),
        ),
        (
            "start 10".into(),
            "error 10 start missing a machine name (package/executable[#tag])".into(),
        ),
        (
            "start 11 ../../bin/sh :0 requester".into(),
            "error 11 start machine name `../../bin/sh`…".into(),
        ),
        (
            "start 12 /bin/sh :0 requester".into(),
            "error 12 start machine name `/bin/sh`…".into(),
        ),
        (
            "start 13 sh :0 requester".into(),
            "error 13 start machine name `sh`…".into(),
        ),
        (
            "start 14 evil/Sh :0 requester".into(),
            "error 14 start `evil/Sh` resolves to …, outside the served directory".into(),
        ),
        (
            "start 15 evil/Up :0 requester".into(),
            "error 15 start `evil/Up` resolves to …, outside the served directory".into(),
        ),
        (
            "start 16 bin/sh :0 server".into(),
            "error 16 start `bin/sh` resolves to …, outside the served directory".into(),
        ),
        (
            "start 17 nothere/Nope :0 requester".into(),
            format!("error 17 start `nothere/Nope`: no executable at {dir}/nothere/Nope: …"),
        ),
        (
            "start 18 text/Plain :0 requester".into(),
            format!("error 18 start `text/Plain`: {dir}/text/Plain is not an executable file"),
        ),
        (
            "start 19 text/Dir :0 requester".into(),
            format!("error 19 start `text/Dir`: {dir}/text/Dir is not an executable file"),
        ),
        (
            "start 20 echo/Echo".into(),
            "error 20 start missing a target (:<port> or <ip>:<port>)".into(),
        ),
        (
            "start 21 echo/Echo :http requester".into(),
            "error 21 start `:http` is not a port (0-65535)".into(),
        ),
        (
            "start 22 echo/Echo :65536 requester".into(),
            "error 22 start `:65536` is not a port (0-65535)".into(),
        ),
        (
            "start 23 echo/Echo nowhere:1 requester".into(),
            "error 23 start address `nowhere:1`…".into(),
        ),
        (
            "start 24 echo/Echo :0".into(),
            "error 24 start missing a parent (requester or server)".into(),
        ),
        (
            "start 25 echo/Echo :0 nobody".into(),
            "error 25 start `nobody` is not a parent; expected requester or server".into(),
        ),
        (
            "register 26".into(),
            "error 26 register missing a machine name (package/executable[#tag])".into(),
        ),
        (
            "register 27 x/y".into(),
            "error 27 register missing a pid".into(),
        ),
        (
            "register 28 x/y -1 127.0.0.1:1 -".into(),
            "error 28 register `-1` is not a pid".into(),
        ),
        // Not a process of the served directory (how the check says so
        // depends on whether the server may read pid 1's executable).
        (
            format!("register 29 x/y 1 {mine} -"),
            "error 29 register pid 1…".into(),
        ),
        // A process outside the served directory is not adopted: this
        // test's own, which holds the client's socket.
        (
            format!("register 30 x/y {pid} {mine} -"),
            format!("error 30 register pid {pid} runs …, outside the served directory"),
        ),
        // The refused registers did not make this client a machine.
        (
            format!("stop 31 {}", mine.port()),
            format!(
                "error 31 stop no machine started by this server listens on port {}",
                mine.port()
            ),
        ),
        (
            "list 32 everything".into(),
            "error 32 list unexpected words after the last argument: everything".into(),
        ),
        (
            "list x".into(),
            "error - list `x` is not a request id (a number from 0 to 2^64-1)".into(),
        ),
    ];
    let mut wrong = Vec::new();
    for (request, expected) in &cases {
        match me.ask(server.address(), request, ASK) {
            Ok(reply) if fits(&reply, expected) => {}
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
        .ask_until(server.address(), "list 40", ASK, |r| {
            r.starts_with("listed")
        })
        .expect("list after the bad requests");
    assert_eq!(listed, ["listed 40 0"]);
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

/// Whether `text` is `pattern`, where each `…` in `pattern` stands for any
/// text.
fn fits(text: &str, pattern: &str) -> bool {
    let mut parts = pattern.split('…');
    let Some(mut rest) = text.strip_prefix(parts.next().unwrap_or_default()) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[test]
fn wink_reports_refusals_with_exit_status_1_and_one_line() {
    let mut server = Server::start().expect("server");
    let dir = server.staged().path().to_owned();
    fs::create_dir_all(dir.join("evil")).expect("mkdir");
    symlink("/bin/sh", dir.join("evil/Sh")).expect("symlink");
    let at = server.address().to_string();
    // Names that are no machine names: `wink` refuses them itself, without
    // asking the server.
    for (name, expected) in [
        ("../../bin/sh", "machine name `../../bin/sh`"),
        ("/bin/sh", "machine name `/bin/sh`"),
        ("sh", "machine name `sh`"),
    ] {
        let out = server
            .wink(&["start", name])
            .expect("run wink")
            .failure()
            .expect("exit status 1");
        assert!(out.stdout.is_empty(), "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(
            out.stderr.starts_with("wink: ")
                && !out.stderr.starts_with(&format!("wink: {at}"))
                && out.stderr.contains(expected),
            "expected `{expected}`: {out}"
        );
    }
    // Refusals by the server: `wink: <server>: <its reason>`.
    for (args, expected) in [
        (&["start", "evil/Sh"][..], "outside the served directory"),
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
    // The server logs each request as it reads it, in order: once it has
    // logged the `list`, it has logged everything before it, and no start
    // of a bad name is among them.
    server
        .expect_all(&["< ", " list "], PATIENCE)
        .expect("the server heard the list");
    let starts: Vec<String> = server
        .process()
        .lines()
        .iter()
        .filter(|l| l.text.starts_with("< ") && l.text.contains(" start "))
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(starts.len(), 2, "only the good names were sent: {starts:?}");
    assert!(
        starts[0].contains(" start 1 evil/Sh ") && starts[1].contains(" start 1 nothere/Nope "),
        "{starts:?}"
    );
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
