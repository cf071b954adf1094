//! The seed's family: `family/Parent` starts `family/Child`, which errors
//! with `AHHHHH` at once; the parent hears `started`, `errored`, `exited`
//! and starts a new child after its retry delay.

use wink_tests::{Server, PATIENCE};

#[test]
fn parent_hears_child_start_error_exit_and_respawns_it() {
    let mut server = Server::start().expect("server");
    let (parent, parent_pid) = server
        .start_machine("family/Parent", &["100"])
        .expect("start family/Parent");
    let p = format!("{parent} family/Parent");

    let mut children = Vec::new();
    for round in 0..2 {
        let started = server
            .expect_all(&["Parent: ", "family/Child has started"], PATIENCE)
            .expect("a child starts");
        let child = wink_tests::word(&started.text, 1).expect("the child's address");
        // What the parent's runtime received, then what the machine made of
        // it, in order (all lines of one process).
        server
            .expect_line(
                &format!("{p} < {child} errored family/Child AHHHHH"),
                PATIENCE,
            )
            .expect("errored reaches the parent");
        server
            .expect_line(
                &format!("Parent: {child} family/Child has errored: AHHHHH"),
                PATIENCE,
            )
            .expect("the parent logs the error");
        server
            .expect_line(
                &format!("{p} < {child} exited family/Child error"),
                PATIENCE,
            )
            .expect("exited reaches the parent");
        server
            .expect_line(
                &format!("Parent: {child} family/Child has exited (error)"),
                PATIENCE,
            )
            .expect("the parent logs the exit");
        if round == 0 {
            // The retry: the parent re-enters Main, which starts a new child.
            server
                .expect_line(&format!("{p} < {parent} retry"), PATIENCE)
                .expect("the retry");
            server
                .expect_line("Parent: OnExit", PATIENCE)
                .expect("exit action");
            server
                .expect_line("Parent: OnEntry", PATIENCE)
                .expect("entry action");
            server
                .expect_line(&format!("{p} Main -> Main"), PATIENCE)
                .expect("the self-transition");
        }
        children.push(child);
    }
    assert_ne!(children[0], children[1], "a new child, on a new port");

    // The server reaped both children, saw them exit with status 1, and did
    // not report them `died`: they said `exited` and `unregister`.
    server.process().set_cursor(0);
    for _ in 0..2 {
        server
            .expect_all(&["Reaped: ", "family/Child exit status 1"], PATIENCE)
            .expect("a child is reaped");
    }
    server.process().set_cursor(0);
    server
        .process()
        .refute("`died` for a child that exited in order", |l| {
            l.contains(" died ")
        })
        .expect("no died");
    assert!(
        wink_tests::is_running(parent_pid),
        "the parent keeps running"
    );
    assert!(
        wink_tests::lasting_zombies_of(server.pid(), PATIENCE).is_empty(),
        "the server leaves no zombies"
    );
}
