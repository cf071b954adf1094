//! A live upgrade: `counter/Counter` counts `count <n>` messages, which
//! must come once each and in order, and carries its count over an
//! upgrade (`#[machine(upgrade)]`); `counter/Feeder <total> <batch>
//! [<every-ms>]` starts one as its child and streams `count 1` … `count
//! <total>` to it, `<batch>` every `<every-ms>` (default 10) milliseconds,
//! then asks for the total (a request), and logs the child's lifecycle,
//! an upgrade included.
//!
//! ```text
//! wink start -f counter/Feeder :0 10000 100
//! wink upgrade <the counter's address> --to counter/Counter#v2
//! ```

/// The counter: counts each `count <n>` whose `n` is the one after the
/// last, and errors on any other (a message lost, repeated or out of
/// order).
#[wink::machine(upgrade)]
pub mod counter {
    /// What it has counted: carried over an upgrade.
    #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
    pub struct Counter {
        /// Messages counted.
        pub count: u64,
        /// The last `n` counted.
        pub last: u64,
    }

    /// Its one state.
    pub enum State {
        /// Counting.
        #[initial]
        Counting,
    }

    impl Counter {
        #[receive(Counting, "count")]
        fn count(&mut self, _cx: &mut Context<Self>, n: u64) -> Result<(), String> {
            if n != self.last + 1 {
                return Err(format!("got count {n} after count {}", self.last));
            }
            self.count += 1;
            self.last = n;
            Ok(())
        }

        #[receive(Counting, "total")]
        fn total(&mut self, cx: &mut Context<Self>) {
            cx.reply(format!("total {} {}", self.count, self.last));
        }
    }
}

/// The feeder: the counter's parent, and the peer that streams to it.
#[wink::machine]
pub mod feeder {
    use std::time::Duration;

    /// How far the stream is.
    #[derive(Debug, Default)]
    pub struct Feeder {
        /// Where the counter listens, once it started.
        pub counter: Option<Address>,
        /// The last `n` sent.
        pub sent: u64,
    }

    /// Its states.
    pub enum State {
        /// Waiting for the counter to start.
        #[initial]
        Starting,
        /// Streaming.
        #[parent(Starting)]
        Streaming,
        /// Asked for the total.
        #[parent(Starting)]
        Asking,
    }

    impl Feeder {
        #[entry(Starting)]
        fn start(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            cx.spawn("counter/Counter").map_err(|e| e.to_string())
        }

        #[receive(Starting, "started")]
        fn started(&mut self, cx: &mut Context<Self>, name: MachineName) {
            info!(cx.log(), "Feeder: {} started at {}", name, cx.sender());
            self.counter = Some(cx.sender());
            let every = self.every(cx);
            cx.send_after(every, cx.address(), "tick");
            cx.transition(State::Streaming);
        }

        #[receive(Streaming, "tick")]
        fn tick(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            let (total, batch) = self.limits(cx)?;
            let Some(counter) = self.counter else {
                return Err("no counter".to_owned());
            };
            let until = (self.sent + batch).min(total);
            while self.sent < until {
                self.sent += 1;
                cx.send(counter, format!("count {}", self.sent));
            }
            info!(cx.log(), "Feeder: sent {}", self.sent);
            if self.sent < total {
                let every = self.every(cx);
                cx.send_after(every, cx.address(), "tick");
            } else {
                cx.request(counter, "total", Duration::from_secs(30));
                cx.transition(State::Asking);
            }
            Ok(())
        }

        #[receive(Asking, "total")]
        fn total(&mut self, cx: &mut Context<Self>, count: u64, last: u64) {
            info!(cx.log(), "Feeder: total {} {}", count, last);
        }

        #[receive(Asking, "timeout")]
        fn timeout(&mut self, cx: &mut Context<Self>, _name: String, ms: u64) {
            info!(cx.log(), "Feeder: no total within {} ms", ms);
        }

        #[receive(Starting, "upgraded")]
        fn upgraded(&mut self, cx: &mut Context<Self>, name: MachineName, from: MachineName) {
            info!(
                cx.log(),
                "Feeder: {} at {} upgraded to {} after count {}",
                from,
                cx.sender(),
                name,
                self.sent
            );
        }

        #[receive(Starting, "errored")]
        fn errored(&mut self, cx: &mut Context<Self>, name: MachineName, why: &str) {
            info!(cx.log(), "Feeder: {} errored: {}", name, why);
        }

        #[receive(Starting, "exited")]
        fn exited(&mut self, cx: &mut Context<Self>, name: MachineName, reason: ExitReason) {
            info!(cx.log(), "Feeder: {} exited {}", name, reason);
        }
    }

    impl Feeder {
        /// `<every-ms>` from its arguments, 10 ms if absent or no number.
        fn every(&self, cx: &Context<Self>) -> Duration {
            let ms = cx.args().get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
            Duration::from_millis(ms)
        }

        /// `<total> <batch>` from its arguments.
        fn limits(&self, cx: &Context<Self>) -> Result<(u64, u64), String> {
            let number = |i: usize, what: &str| -> Result<u64, String> {
                cx.args()
                    .get(i)
                    .ok_or_else(|| format!("missing argument <{what}>"))?
                    .parse()
                    .map_err(|e| format!("<{what}>: {e}"))
            };
            Ok((number(0, "total")?, number(1, "batch")?.max(1)))
        }
    }
}
