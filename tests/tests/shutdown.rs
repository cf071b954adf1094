//! SIGTERM to the server: it stops every machine it started (SIGTERM, then
//! SIGKILL after its grace period), then exits 0. Nothing is left running.

use wink_tests::{is_running, Server, PATIENCE};

#[test]
fn sigterm_stops_the_server_and_all_its_machines() {
    let mut server = Server::start().expect("server");
    let (echo, _) = server.start_machine("echo/Echo", &[]).expect("echo");
    let (switch, _) = server.start_machine("switch/Switch", &[]).expect("switch");
    let (parent, _) = server
        .start_machine("family/Parent", &["100"])
        .expect("family/Parent");
    server
        .expect_line("family/Child has exited", PATIENCE)
        .expect("the family is busy");
    let pids = server.staged().running();
    assert!(pids.len() >= 3, "{pids:?}");

    let mark = server.process().cursor();
    let status = server.terminate(PATIENCE).expect("the server exits");
    assert!(status.success(), "{status}");
    for machine in [
        format!("{echo} echo/Echo"),
        format!("{switch} switch/Switch"),
        format!("{parent} family/Parent"),
    ] {
        server.process().set_cursor(mark);
        server
            .expect_line(&format!("{machine} stopping"), PATIENCE)
            .expect("stopped by the server");
        server
            .expect_line(&format!("{machine} exited: stopped"), PATIENCE)
            .expect("exits in order");
    }
    server.process().set_cursor(mark);
    server
        .expect_line("server exited", PATIENCE)
        .expect("the server's last word");
    for pid in pids {
        assert!(!is_running(pid), "{pid} is left behind");
    }
    assert!(server.staged().running().is_empty());
    server.process().set_cursor(mark);
    server
        .process()
        .refute("SIGKILL", |l| l.contains("SIGKILL"))
        .expect("all exited on SIGTERM");
}
