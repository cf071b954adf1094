//! `wink-server serve --log-format json`: the server and the machines it
//! starts write one JSON object a line, and a machine's records (its
//! user's lines included) say which machine they are of.

use wink_tests::{Error, Result, Server, ServerOptions, Staged, PATIENCE};

#[test]
fn json_logs_are_one_object_a_line_and_name_their_machine() -> Result<()> {
    let options = ServerOptions::default().args(&["--log-format", "json"]);
    let mut server = Server::serve(Staged::new()?, options)?;
    // (Not `start_machine`: it reads the server's text lines.)
    let out = server.wink_ok(&["start", "switch/Switch", ":0"])?;
    let switch = wink_tests::started_address(&out.stdout)?;
    server.wink_ok(&["send", &switch.to_string(), "on"])?;
    // The switch's own `info!(cx.log(), "Switch is ON")`.
    let line = server.expect_line("Switch is ON", PATIENCE)?;
    let record: serde_json::Value = serde_json::from_str(&line.text)
        .map_err(|e| Error::new(format!("not JSON ({e}): {}", line.text)))?;
    assert_eq!(record["msg"], "Switch is ON", "{record}");
    assert_eq!(record["machine"], "switch/Switch", "{record}");
    assert_eq!(record["at"], switch.to_string(), "{record}");
    assert_eq!(record["level"], "INFO", "{record}");
    assert!(record["ts"].is_string(), "{record}");
    // Every line so far, the server's and the machine's, is one object.
    let lines = server.process().lines().to_vec();
    for line in lines.iter().filter(|l| !l.stderr) {
        serde_json::from_str::<serde_json::Value>(&line.text)
            .map_err(|e| Error::new(format!("not JSON ({e}): {}", line.text)))?;
    }
    Ok(())
}
