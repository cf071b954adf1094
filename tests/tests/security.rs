//! A cluster with a key: nobody without it can start, stop, message or
//! impersonate, and captured datagrams replayed are refused; the key
//! rotates without stopping anything; without a key the cluster is open,
//! as `docs/security.md` says.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wink::auth::{write_new_key_file, Keys};
use wink::transport::{incarnation_at, Transport, TransportConfig};
use wink_tests::{is_running, Client, Server, ServerOptions, Staged, PATIENCE};

#[cfg(test)]
/// Two key files in a temporary directory: the cluster's, and another
/// cluster's.
struct KeyFiles {
    _dir: tempfile::TempDir,
    ours: PathBuf,
    theirs: PathBuf,
}

#[cfg(test)]
fn key_files() -> KeyFiles {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ours = dir.path().join("cluster.key");
    let theirs = dir.path().join("other.key");
    write_new_key_file(&ours).expect("keygen");
    write_new_key_file(&theirs).expect("keygen");
    KeyFiles {
        _dir: dir,
        ours,
        theirs,
    }
}

#[cfg(test)]
fn keyed_server(keys: &KeyFiles, options: ServerOptions) -> Server {
    Server::serve(Staged::new().expect("stage"), options.key_file(&keys.ours)).expect("server")
}

#[cfg(test)]
fn keys_of(file: &Path) -> Arc<Keys> {
    Arc::new(Keys::read(file).expect("keys"))
}

#[test]
fn a_keyed_cluster_obeys_its_members_and_nobody_else() {
    let keys = key_files();
    let mut server = keyed_server(&keys, ServerOptions::default());
    let (echo, pid) = server
        .start_machine("echo/Echo", &[])
        .expect("start with the key");
    let echo_text = echo.to_string();
    let port = format!(":{}", echo.port());
    for outsider in [None, Some(keys.theirs.as_path())] {
        let who = if outsider.is_some() {
            "another key"
        } else {
            "no key"
        };
        for attempt in [
            vec!["stop", echo_text.as_str()],
            vec!["start", "echo/Echo", port.as_str()],
            vec!["send", echo_text.as_str(), "ping 1"],
            vec!["list"],
        ] {
            let mut args = vec!["--timeout", "1"];
            args.extend(&attempt);
            let out = server.wink_keyed(outsider, &args).expect("wink");
            assert!(
                !out.status.success(),
                "{who}: `wink {attempt:?}` was obeyed: {out}"
            );
        }
        assert!(is_running(pid), "{who}: the machine is gone");
    }
    // The server said whom it refused, and why.
    server
        .expect_all(
            &[
                "dropped datagrams from",
                "datagram not sealed, but this cluster has a key",
            ],
            PATIENCE,
        )
        .expect("unsealed refused");
    server
        .expect_all(
            &["dropped datagrams from", "which is not one of ours"],
            PATIENCE,
        )
        .expect("another key refused");
    // The members still are obeyed: the machine answers, is listed, stops.
    let out = server
        .wink_ok(&["send", "-r", "1", &echo_text, "ping 2"])
        .expect("send with the key");
    assert!(out.stdout.contains("ping 2"), "{out}");
    let rows = server.list().expect("list");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].pid, pid);
    // The machine never saw what the outsiders sent it.
    server
        .wink_ok(&["stop", &echo_text])
        .expect("stop with the key");
    server
        .expect_line(&format!("{echo_text} echo/Echo exited: stopped"), PATIENCE)
        .expect("the machine exits");
    let lines: Vec<String> = server
        .process()
        .lines()
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("< ") && l.contains("ping 1")),
        "an outsider's message was delivered: {lines:#?}"
    );
    let counts = lines
        .iter()
        .find(|l| l.starts_with(&format!("{echo_text} transport:")))
        .expect("the machine's counts");
    assert!(!counts.contains("refused 0 unauthenticated"), "{counts}");
    server.terminate(PATIENCE).expect("server exits");
    let counts = server
        .expect_line("server transport:", PATIENCE)
        .expect("the server's counts")
        .text;
    assert!(!counts.contains("refused 0 unauthenticated"), "{counts}");
}

#[test]
fn forged_words_from_outside_change_nothing() {
    // Without a key, one unhandled word ends switch/Switch and a forged
    // `died` ends family/Parent; with it, they are dropped unread.
    let keys = key_files();
    let mut server = keyed_server(&keys, ServerOptions::default());
    let (switch, switch_pid) = server.start_machine("switch/Switch", &[]).expect("switch");
    let (parent, parent_pid) = server
        .start_machine("family/Parent", &["1"])
        .expect("parent");
    let server_address = server.address();
    let forged = [
        (switch, "no-such-word".to_owned()),
        (parent, format!("died {switch} 9")),
        (server_address, "unregister 77".to_owned()),
    ];
    // Without a key, and with another cluster's.
    for keys in [None, Some(keys_of(&keys.theirs))] {
        let mut outsider = Client::keyed(keys).expect("client");
        for (to, text) in &forged {
            let refused = outsider.ask(*to, text, Duration::from_millis(300));
            assert!(refused.is_err(), "{to} answered `{text}`: {refused:?}");
        }
        for who in [switch, parent] {
            server
                .expect_all(
                    &[
                        &format!("{who} "),
                        &format!("dropped datagrams from {}", outsider.address()),
                    ],
                    PATIENCE,
                )
                .expect("refusal logged by the machine");
        }
    }
    assert!(is_running(switch_pid) && is_running(parent_pid));
    let names: Vec<String> = server
        .list()
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert!(names.contains(&"switch/Switch".to_owned()), "{names:?}");
    assert!(names.contains(&"family/Parent".to_owned()), "{names:?}");
}

#[cfg(test)]
/// A member of the cluster speaking from `socket`: what it sends is what an
/// eavesdropper on the path would capture, sealed for the recipient.
struct Member {
    socket: UdpSocket,
    transport: Transport,
}

#[cfg(test)]
impl Member {
    fn new(keys: Arc<Keys>) -> Member {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("member socket");
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        let mut transport = Transport::new(
            incarnation_at(unix, std::process::id()),
            TransportConfig {
                keys: Some(keys),
                ..TransportConfig::default()
            },
        );
        transport.set_clock(Instant::now(), unix);
        transport.set_local_addr(socket.local_addr().expect("address"));
        Member { socket, transport }
    }

    /// Sends `text` to `to` and returns the datagram that carried it.
    fn send(&mut self, to: SocketAddr, text: &str) -> Vec<u8> {
        self.transport.send(to, text).expect("send");
        let mut buf = vec![0u8; 65536];
        let (_, len) = self
            .transport
            .poll_transmit(Instant::now(), &mut buf)
            .expect("a datagram");
        self.socket.send_to(&buf[..len], to).expect("send");
        buf[..len].to_vec()
    }
}

#[cfg(test)]
/// Sends `datagram` to `to` from a new socket; returns its address.
fn replay(datagram: &[u8], to: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("replay socket");
    socket.send_to(datagram, to).expect("replay");
    socket.local_addr().expect("address")
}

#[test]
fn captured_requests_replayed_are_refused() {
    let keys = key_files();
    let cluster = keys_of(&keys.ours);
    // A second of skew: a replay a few seconds old is out of time.
    let mut server = keyed_server(
        &keys,
        ServerOptions::default().env("WINK_MAX_SKEW_MS", "1000"),
    );
    let server_at = server.address().socket_addr();
    let (first, _) = server.start_machine("echo/Echo", &[]).expect("start");
    // A member stops it; its datagram is captured.
    let mut member = Member::new(cluster.clone());
    let stop = member.send(server_at, &format!("stop 900 {}", first.port()));
    server
        .expect_line(&format!("{first} echo/Echo exited: stopped"), PATIENCE)
        .expect("stopped");
    // A new machine on the same port; the captured stop, sent again at once
    // from another address, is refused.
    let port = format!(":{}", first.port());
    let out = server
        .wink_ok(&["start", "echo/Echo", &port])
        .expect("restart");
    assert_eq!(
        wink_tests::started_address(&out.stdout).expect("started"),
        first
    );
    let pid = server
        .expect_registration("echo/Echo")
        .expect("registered")
        .pid;
    let from = replay(&stop, server_at);
    server
        .expect_all(
            &[&format!("dropped datagrams from {from}"), "a replay"],
            PATIENCE,
        )
        .expect("replayed stop refused");
    // A member starts a machine; its captured start, sent again, starts
    // nothing more.
    let mut starter = Member::new(cluster);
    let captured = starter.send(server_at, "start 901 echo/Echo :0 server");
    let started = server
        .expect_registration("echo/Echo")
        .expect("the member's start")
        .pid;
    let from = replay(&captured, server_at);
    server
        .expect_all(
            &[&format!("dropped datagrams from {from}"), "a replay"],
            PATIENCE,
        )
        .expect("replayed start refused");
    assert!(
        is_running(pid) && is_running(started),
        "a replay was obeyed"
    );
    assert_eq!(server.list().expect("list").len(), 2);
    // Later than the skew, sent again from the member's own address: out
    // of time. (The seal holds whole seconds; the wait is the point.)
    thread::sleep(Duration::from_millis(2500));
    member.socket.send_to(&stop, server_at).expect("replay");
    let from = member.socket.local_addr().expect("address");
    server
        .expect_all(
            &[
                &format!("dropped datagrams from {from}"),
                "too far from our clock",
            ],
            PATIENCE,
        )
        .expect("outdated replay refused");
    assert!(is_running(pid), "the replayed stop was obeyed");
}

#[test]
fn a_datagram_of_an_earlier_incarnation_is_refused() {
    let keys = key_files();
    let mut server = keyed_server(&keys, ServerOptions::default());
    let (echo, _) = server.start_machine("echo/Echo", &[]).expect("echo");
    let cluster = keys_of(&keys.ours);
    // The current life of a process at some address talks to the echo.
    let mut current = Member::new(cluster.clone());
    let me = current.socket.local_addr().expect("address");
    current.send(echo.socket_addr(), "ping now");
    server
        .expect_line(&format!("{echo} echo/Echo < {me} ping now"), PATIENCE)
        .expect("delivered");
    // What the same address sent in an earlier life, ten seconds before
    // (an older incarnation), sealed within the skew, comes again.
    let now = Instant::now();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let mut earlier = Transport::new(
        incarnation_at(unix - Duration::from_secs(10), 7),
        TransportConfig {
            keys: Some(cluster),
            ..TransportConfig::default()
        },
    );
    earlier.set_clock(now, unix);
    earlier
        .send(echo.socket_addr(), "ping from an earlier life")
        .expect("send");
    let mut buf = vec![0u8; 65536];
    let (_, len) = earlier.poll_transmit(now, &mut buf).expect("a datagram");
    current
        .socket
        .send_to(&buf[..len], echo.socket_addr())
        .expect("replay");
    server
        .expect_all(
            &[
                &format!("{echo} echo/Echo dropped datagrams from {me}"),
                "a replay",
            ],
            PATIENCE,
        )
        .expect("refused");
    let lines: Vec<String> = server
        .process()
        .lines()
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert!(
        !lines.iter().any(|l| l.contains("earlier life")),
        "delivered: {lines:#?}"
    );
}

#[test]
fn without_a_key_the_cluster_is_open_and_a_keyed_command_is_refused() {
    let keys = key_files();
    let mut server = Server::start().expect("server");
    let (echo, pid) = server.start_machine("echo/Echo", &[]).expect("echo");
    // Anybody may stop it: the cluster is open (docs/security.md).
    let out = server
        .wink_keyed(
            Some(&keys.ours),
            &["--timeout", "1", "stop", &echo.to_string()],
        )
        .expect("wink");
    assert!(
        !out.status.success(),
        "an open server read a sealed request: {out}"
    );
    server
        .expect_all(
            &["dropped datagrams from", "which is not one of ours"],
            PATIENCE,
        )
        .expect("sealed refused by an open server");
    assert!(is_running(pid));
    // Anybody may message it, and stop it.
    let out = server
        .wink_ok(&["send", "-r", "1", &echo.to_string(), "ping open"])
        .expect("send without a key");
    assert!(out.stdout.contains("ping open"), "{out}");
    server
        .wink_ok(&["stop", &echo.to_string()])
        .expect("stop without a key");
    server
        .expect_line(&format!("{echo} echo/Echo exited: stopped"), PATIENCE)
        .expect("stopped");
}

#[test]
fn a_key_is_rotated_without_stopping_the_cluster() {
    // The steps of docs/operations.md: add the new key as accepted,
    // SIGHUP; make it the current one, SIGHUP; drop the old one, SIGHUP.
    // The server passes each SIGHUP on to its machines.
    let keys = key_files();
    let old = std::fs::read_to_string(&keys.ours).expect("old key");
    let new = std::fs::read_to_string(&keys.theirs).expect("new key");
    let (old, new) = (old.trim(), new.trim());
    let mut server = keyed_server(&keys, ServerOptions::default());
    let (echo, pid) = server.start_machine("echo/Echo", &[]).expect("echo");
    let only_new = keys._dir.path().join("only-new.key");
    let only_old = keys._dir.path().join("only-old.key");
    for (file, text) in [(&only_new, new), (&only_old, old)] {
        std::fs::write(file, format!("{text}\n")).expect("write");
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
    }
    let id = |text: &str| Keys::parse(text).expect("key").current().id();
    let ask = |server: &Server, key: &Path| {
        let echo = echo.to_string();
        let args = ["--timeout", "2", "send", "-r", "1", echo.as_str(), "ping"];
        server.wink_keyed(Some(key), &args)
    };
    for (step, file_text, current) in [
        ("accept the new key", format!("{old}\n{new}\n"), id(old)),
        ("seal with the new key", format!("{new}\n{old}\n"), id(new)),
        ("drop the old key", format!("{new}\n"), id(new)),
    ] {
        std::fs::write(&keys.ours, file_text).expect("rewrite the key file");
        wink_tests::signal(server.pid(), rustix::process::Signal::HUP).expect("SIGHUP");
        let sealing = format!("again: sealing with key {current},");
        server
            .expect_all(&["the server read the key file", &sealing], PATIENCE)
            .unwrap_or_else(|e| panic!("{step}: {e}"));
        server
            .expect_all(&[&format!("{echo} read the key file"), &sealing], PATIENCE)
            .unwrap_or_else(|e| panic!("{step}: the machine: {e}"));
        assert!(is_running(pid), "{step}: the machine stopped");
        // Who can talk to the machine now.
        let (new_ok, old_ok) = match step {
            "accept the new key" => (false, true),
            "seal with the new key" => (true, false),
            _ => (true, false),
        };
        let with_new = ask(&server, &only_new).expect("wink");
        assert_eq!(
            with_new.status.success(),
            new_ok,
            "{step}, new key only: {with_new}"
        );
        let with_old = ask(&server, &only_old).expect("wink");
        assert_eq!(
            with_old.status.success(),
            old_ok,
            "{step}, old key only: {with_old}"
        );
    }
    assert_eq!(server.list().expect("list")[0].pid, pid);
}
