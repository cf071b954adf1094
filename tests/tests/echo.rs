//! `wink send -r 1` to `echo/Echo` prints what it sent.

use wink_tests::Server;

#[test]
fn send_with_one_reply_prints_the_echo() {
    let mut server = Server::start().expect("server");
    let (echo, _) = server.start_machine("echo/Echo", &[]).expect("start echo");
    let echo = echo.to_string();

    let out = server
        .wink_ok(&["send", "-r", "1", &echo, "hello", "world"])
        .expect("send");
    assert_eq!(out.stdout, "hello world\n", "{out}");

    // One argument with inner spaces travels as is; `:<port>` works too.
    let port = format!(":{}", echo.rsplit_once(':').expect("a port").1);
    let out = server
        .wink_ok(&["send", "--replies", "1", &port, "hello  wide   world"])
        .expect("send to :port");
    assert_eq!(out.stdout, "hello  wide   world\n", "{out}");

    // A word in double quotes is one word to the machine's receivers.
    let out = server
        .wink_ok(&["send", "-r", "1", &echo, r#"words "Ada Byron" Lovelace"#])
        .expect("send quoted words");
    assert_eq!(out.stdout, "2 words: [Ada Byron] [Lovelace]\n", "{out}");

    // It logs every message it receives (its server's replies too).
    let received = format!("{echo} echo/Echo < ");
    server
        .process()
        .expect(
            &format!("`{received}<sender> hello world`"),
            wink_tests::PATIENCE,
            |l| l.starts_with(&received) && l.ends_with(" hello world"),
        )
        .expect("the echo logs what it received");
}

#[test]
fn send_waiting_for_a_reply_that_never_comes_fails() {
    let mut server = Server::start().expect("server");
    let (echo, _) = server.start_machine("echo/Echo", &[]).expect("start echo");
    let out = server
        .wink(&["-t", "0.5", "send", "-r", "2", &echo.to_string(), "once"])
        .expect("run wink")
        .failure()
        .expect("exit status 1");
    assert_eq!(out.stdout, "once\n", "the one reply is printed: {out}");
    assert!(out.stderr.starts_with("wink: no answer from"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "a one-line error: {out}");
}
