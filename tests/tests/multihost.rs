//! Two hosts on one machine: two network namespaces joined by a veth pair,
//! a `wink-server` in each. A parent on the first host starts a child on the
//! second, through the second host's server, and the child talks back across
//! the link; then the same with a cluster key on both servers, and a command
//! without it from the second host obeyed by neither.
//!
//! Needs root (to make namespaces), which CI has; with `CI` set and no
//! root, it fails.

use wink_tests::netns::Hosts;
use wink_tests::PATIENCE;

#[test]
fn parent_on_one_host_starts_a_child_on_another() {
    let Some(hosts) = Hosts::create("mh", 0) else {
        return;
    };
    let staged = wink_tests::Staged::new().expect("stage");
    let server_a = format!("{}:42000", hosts.ip_a);
    let server_b = format!("{}:42000", hosts.ip_b);
    let mut a = Hosts::serve(&hosts.a, &staged, &server_a, &[]).expect("server on host A");
    let mut b = Hosts::serve(&hosts.b, &staged, &server_b, &[]).expect("server on host B");

    // On host A: a Host that starts its Greeter on host B.
    let at_b = format!("{}:7005", hosts.ip_b);
    let out = Hosts::wink(
        &hosts.a,
        &["-s", &server_a, "start", "greeter/Host", ":0", &at_b, "Bob"],
    )
    .expect("run wink");
    assert!(
        out.status.success(),
        "wink start: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Host B's server starts the greeter, with host A's machine as parent.
    let request = b
        .expect_all(&["< ", " start ", " greeter/Greeter#Bob ", &at_b], PATIENCE)
        .expect("the request came from host A");
    assert!(
        request.text.contains(&format!("< {}:", hosts.ip_a)),
        "{request}"
    );
    b.expect_all(&["Forked: ", "greeter/Greeter#Bob", &at_b], PATIENCE)
        .expect("host B starts the greeter");

    // The greeting crosses back to host A.
    a.expect_line(&format!("Host: Bob says hello from {at_b}"), PATIENCE)
        .expect("host A hears the greeting from host B");
    a.expect_all(&["Host: exited greeter/Greeter#Bob normal"], PATIENCE)
        .expect("and the greeter's exit");
    b.expect_all(
        &["Reaped: ", "greeter/Greeter#Bob", "exit status 0"],
        PATIENCE,
    )
    .expect("host B reaps it");
}

#[test]
fn with_a_key_a_parent_starts_a_child_on_another_host_and_an_outsider_cannot_stop_it() {
    let Some(hosts) = Hosts::create("mk", 1) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("cluster.key");
    wink::auth::write_new_key_file(&key).expect("keygen");
    let key = key.display().to_string();
    let staged = wink_tests::Staged::new().expect("stage");
    let server_a = format!("{}:42000", hosts.ip_a);
    let server_b = format!("{}:42000", hosts.ip_b);
    let env = [("WINK_KEY_FILE", key.as_str())];
    let mut a = Hosts::serve(&hosts.a, &staged, &server_a, &env).expect("server on host A");
    let mut b = Hosts::serve(&hosts.b, &staged, &server_b, &env).expect("server on host B");

    let at_b = format!("{}:7005", hosts.ip_b);
    let start = [
        "-s",
        server_a.as_str(),
        "start",
        "greeter/Host",
        ":0",
        &at_b,
        "Bob",
    ];
    let mut keyed = vec!["--key-file", key.as_str()];
    keyed.extend(start);
    let out = Hosts::wink(&hosts.a, &keyed).expect("run wink");
    assert!(
        out.status.success(),
        "wink start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let host = wink_tests::started_address(&stdout).expect("the Host's address");
    b.expect_all(&["Forked: ", "greeter/Greeter#Bob", &at_b], PATIENCE)
        .expect("host B starts the greeter, sealed both ways");
    a.expect_line(&format!("Host: Bob says hello from {at_b}"), PATIENCE)
        .expect("host A hears the greeting from host B");

    // From host B, without the key: no stop, no start, on either server.
    let host_text = host.to_string();
    // It binds host B's own address: loopback reaches no other host.
    let outsider = format!("{}:0", hosts.ip_b);
    let stop = ["stop", host_text.as_str()];
    let start = ["start", "echo/Echo", ":7006"];
    for (server, request) in [(&server_a, &stop[..]), (&server_b, &start[..])] {
        let mut attempt = vec!["-a", outsider.as_str(), "-t", "1", "-s", server.as_str()];
        attempt.extend_from_slice(request);
        let out = Hosts::wink(&hosts.b, &attempt).expect("run wink");
        assert!(!out.status.success(), "obeyed without the key: {attempt:?}");
    }
    a.expect_all(&["dropped datagrams from ", "not sealed"], PATIENCE)
        .expect("host A's server refused the outsider");
    b.expect_all(&["dropped datagrams from ", "not sealed"], PATIENCE)
        .expect("host B's server refused the outsider");
    // The Host still runs: listed by its server, to a member.
    let list = Hosts::wink(&hosts.a, &["--key-file", &key, "-s", &server_a, "list"]).expect("list");
    let rows = wink_tests::parse_list(&String::from_utf8_lossy(&list.stdout)).expect("rows");
    assert!(
        rows.iter()
            .any(|r| r.address == host_text && r.name == "greeter/Host"),
        "{rows:?}"
    );
}
