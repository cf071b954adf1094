//! The `wink` binary against a fake server made of a bare endpoint: the
//! I/O loop around the conversations, with real sockets and real time.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use wink::control::{Request, RequestId};
use wink::runtime::Endpoint;
use wink::transport::TransportConfig;
use wink::Address;

const PATIENCE: Duration = Duration::from_secs(10);

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn endpoint() -> Result<Endpoint> {
    Ok(Endpoint::bind(
        "127.0.0.1:0".parse()?,
        TransportConfig::default(),
    )?)
}

fn wink(server: Address, args: &[&str]) -> Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_wink"))
        .args(["-s", &server.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// The next message `at` gets, and who sent it.
fn message(at: &mut Endpoint) -> Result<(Address, String)> {
    Ok(at.recv_timeout(PATIENCE)?.ok_or("no message in time")?)
}

/// The request the fake server gets, and who sent it.
fn request(server: &mut Endpoint) -> Result<(Address, Request)> {
    let (from, text) = message(server)?;
    Ok((from, text.parse()?))
}

/// Sends each message and waits until `wink` acknowledged them.
fn answer(server: &mut Endpoint, to: Address, messages: &[&str]) -> Result {
    for message in messages {
        server.send(to, *message)?;
    }
    if !server.settle(PATIENCE)? {
        return Err("wink did not acknowledge".into());
    }
    Ok(())
}

/// Stdout, stderr and exit status, once `wink` ended.
fn output(child: Child) -> Result<(String, String, Option<i32>)> {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output()?;
    Ok((
        String::from_utf8(stdout)?,
        String::from_utf8(stderr)?,
        status.code(),
    ))
}

#[test]
fn start_prints_started_and_ignores_what_is_not_its_answer() -> Result {
    let mut server = endpoint()?;
    let mut stranger = endpoint()?;
    let child = wink(
        server.local_addr(),
        &["start", "echo/Echo", ":42101", "a", "-b"],
    )?;
    let (wink, request) = request(&mut server)?;
    assert_eq!(request.to_string(), "start 1 echo/Echo :42101 server a -b");
    answer(
        &mut stranger,
        wink,
        &["relayed 1 127.0.0.1:9 started echo/Echo 1"],
    )?;
    answer(
        &mut server,
        wink,
        &[
            "relayed 2 127.0.0.1:8 started echo/Echo 2",
            "starting 1 4242",
            "relayed 1 127.0.0.1:42101 started echo/Echo 1",
        ],
    )?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(stdout, "127.0.0.1:42101 started echo/Echo\n", "{stderr}");
    assert_eq!(status, Some(0), "{stderr}");
    Ok(())
}

#[test]
fn start_follow_fails_when_the_machine_errored() -> Result {
    let mut server = endpoint()?;
    let child = wink(server.local_addr(), &["start", "-f", "family/Child"])?;
    let (wink, request) = request(&mut server)?;
    assert_eq!(request.to_string(), "start 1 family/Child :0 server");
    answer(
        &mut server,
        wink,
        &[
            "starting 1 4242",
            "relayed 1 127.0.0.1:42101 started family/Child 1",
            "relayed 1 127.0.0.1:42101 errored family/Child AHHHHH",
            "relayed 1 127.0.0.1:42101 exited family/Child error",
        ],
    )?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(
        stdout,
        "127.0.0.1:42101 started family/Child\n\
         127.0.0.1:42101 errored family/Child AHHHHH\n\
         127.0.0.1:42101 exited family/Child error\n"
    );
    assert_eq!(stderr, "wink: family/Child errored: AHHHHH\n");
    assert_eq!(status, Some(1));
    Ok(())
}

#[test]
fn stop_waits_the_grace_period_beyond_its_timeout() -> Result {
    let mut server = endpoint()?;
    let child = wink(server.local_addr(), &["-t", "0.3", "stop", ":42101"])?;
    let (wink, request) = request(&mut server)?;
    assert_eq!(
        request,
        Request::Stop {
            id: RequestId(1),
            port: 42101,
            grace_ms: None
        }
    );
    answer(&mut server, wink, &["stopping 1 42101 400"])?;
    // Past the timeout, within the timeout plus the grace period.
    assert_eq!(server.recv_timeout(Duration::from_millis(450))?, None);
    answer(&mut server, wink, &["stopped 1 42101"])?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(stdout, "stopped 127.0.0.1:42101\n", "{stderr}");
    assert_eq!(status, Some(0), "{stderr}");
    Ok(())
}

#[test]
fn list_shows_the_server_as_a_parent() -> Result {
    let mut server = endpoint()?;
    let me = server.local_addr();
    let child = wink(me, &["list"])?;
    let (wink, request) = request(&mut server)?;
    assert_eq!(request, Request::List { id: RequestId(1) });
    let row = format!("machine 1 127.0.0.1:42101 700 echo/Echo {me} 3");
    answer(&mut server, wink, &[&row, "listed 1 1"])?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(
        stdout,
        "ADDRESS          PID  NAME       PARENT  UPTIME\n\
         127.0.0.1:42101  700  echo/Echo  server  3s\n",
        "{stderr}"
    );
    assert_eq!(status, Some(0), "{stderr}");
    Ok(())
}

#[test]
fn a_refusal_is_one_line_naming_the_server() -> Result {
    let mut server = endpoint()?;
    let me = server.local_addr();
    let child = wink(me, &["start", "nothere/Nope"])?;
    let (wink, _) = request(&mut server)?;
    answer(
        &mut server,
        wink,
        &["error 1 start no executable at /x/nothere/Nope"],
    )?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("wink: {me}: no executable at /x/nothere/Nope\n")
    );
    assert_eq!(status, Some(1));
    Ok(())
}

#[test]
fn send_prints_the_machines_replies() -> Result {
    let mut machine = endpoint()?;
    let at = machine.local_addr().to_string();
    let child = wink(
        machine.local_addr(),
        &["send", "-r", "1", &at, "hello", "world"],
    )?;
    let (wink, text) = message(&mut machine)?;
    assert_eq!(text, "hello world");
    answer(&mut machine, wink, &[&text])?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(stdout, "hello world\n", "{stderr}");
    assert_eq!(status, Some(0), "{stderr}");
    Ok(())
}

#[test]
fn no_server_is_a_timeout() -> Result {
    // Bound, so nothing else gets the port, but never answering.
    let server = endpoint()?;
    let at = server.local_addr();
    let child = wink(at, &["-t", "0.3", "list"])?;
    let (stdout, stderr, status) = output(child)?;
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("wink: no answer from {at} within 0.3s (is it running?)\n")
    );
    assert_eq!(status, Some(1));
    Ok(())
}

#[test]
fn bad_arguments_are_one_line_and_status_1() -> Result {
    let server: Address = "127.0.0.1:9".parse()?;
    let (stdout, stderr, status) = output(wink(server, &["start", "../../bin/sh"])?)?;
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("wink: invalid value '../../bin/sh' for '<NAME>': machine name"),
        "{stderr}"
    );
    assert_eq!(status, Some(1));
    Ok(())
}
