//! Sequential request/replies to a running machine (an `echo/Echo`, say),
//! for measuring what one costs at the machine:
//!
//! ```sh
//! cargo run --release -p wink --example rtt -- 127.0.0.1:42101 20000
//! ```
//!
//! Each request waits for its reply through [`Endpoint::recv_timeout`],
//! which acknowledges the reply at once, as the `wink` command does. With
//! `--piggyback`, the acknowledgement waits for the next request and goes in
//! the same `sendmmsg`, as a machine's own loop does.

use std::error::Error;
use std::time::{Duration, Instant};

use wink::runtime::{Endpoint, Inbox};
use wink::transport::TransportConfig;
use wink::Address;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let piggyback = args.iter().any(|a| a == "--piggyback");
    let args: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [to, n] = args[..] else {
        return Err("usage: rtt <address> <count> [--piggyback]".into());
    };
    let to: Address = to.parse()?;
    let n: u32 = n.parse()?;
    let mut client = Endpoint::bind("127.0.0.1:0".parse()?, TransportConfig::default())?;
    let mut inbox = Inbox::default();
    let start = Instant::now();
    for i in 0..n {
        let message = format!("ping {i:07}");
        client.send(to, message.as_str())?;
        let reply = if piggyback {
            inbox.clear();
            while inbox.is_empty() {
                if client.wait(client.next_deadline())? {
                    client.receive_ready(Instant::now(), &mut inbox)?;
                }
                client.handle_timeout(Instant::now());
            }
            inbox.get(0).map(|(_, text)| text.to_owned())
        } else {
            client
                .recv_timeout(Duration::from_secs(5))?
                .map(|(_, text)| text)
        };
        if reply.as_deref() != Some(message.as_str()) {
            return Err(format!("sent `{message}`, got {reply:?}").into());
        }
    }
    let took = start.elapsed();
    client.settle(Duration::from_secs(5))?;
    println!(
        "{n} round trips in {took:.2?}: {:.1?} each",
        took / n.max(1)
    );
    Ok(())
}
