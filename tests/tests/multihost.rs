//! Two hosts on one machine: two network namespaces joined by a veth pair,
//! a `wink-server` in each. A parent on the first host starts a child on the
//! second, through the second host's server, and the child talks back across
//! the link.
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
