//! A boss that supervises several workers, some on other hosts, with a
//! declared supervisor (`wink::supervisor`): its strategy, restart type
//! and intensity come from its arguments; and a worker that runs until
//! told to quit (or to crash).

/// The boss: `crew/Boss [<option>=<value>…] <worker>…`, each worker
/// `<tag>` (`crew/Worker#<tag>` on this host), `<tag>@<ip>` (on the host
/// at `<ip>`, through its server), or a whole machine name (`echo/Echo`).
/// It supervises them, started in that order, with the options:
///
/// - `strategy=one_for_one|one_for_all|rest_for_one` (default
///   `one_for_one`);
/// - `restart=permanent|transient|temporary`, for every worker (default
///   `transient`: a worker that exits `normal` is done);
/// - `intensity=<restarts>/<period-ms>` (default `3/5000`);
/// - `shutdown=<ms>`, each worker's time to exit when stopped (default
///   5000).
///
/// Too many restarts and the boss errors, so its own parent decides.
#[wink::machine]
pub mod boss {
    use std::net::IpAddr;
    use std::time::Duration;
    use wink::supervisor::{ChildSpec, Restart, Strategy, Supervision};

    /// What the boss was asked to supervise, and what it heard.
    #[derive(Debug, Default)]
    pub struct Boss {
        /// Workers that ended normally and are not restarted.
        pub done: Vec<MachineName>,
        /// `started` heard from workers, restarts included.
        pub starts: u32,
    }

    /// Its one state.
    pub enum State {
        /// Supervises from entry.
        #[initial]
        Bossing,
    }

    impl Boss {
        #[entry(Bossing)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            let supervision = supervision(cx.args())?;
            cx.supervise(supervision);
            Ok(())
        }

        #[receive(Bossing, "started")]
        fn started(&mut self, cx: &mut Context<Self>, child: MachineName) {
            self.starts += 1;
            info!(cx.log(), "Boss: {} started at {}", child, cx.sender());
        }

        #[receive(Bossing, "exited")]
        fn exited(&mut self, cx: &mut Context<Self>, child: MachineName, reason: ExitReason) {
            info!(cx.log(), "Boss: {} exited ({})", child, reason);
            if reason.is_normal() {
                self.done.push(child);
            }
        }

        #[receive(Bossing)]
        fn lifecycle(&mut self, _cx: &mut Context<Self>, _message: &str) {}
    }

    /// The supervision the arguments ask for.
    pub fn supervision(args: &[String]) -> Result<Supervision, String> {
        let mut supervision = Supervision::one_for_one().intensity(3, Duration::from_secs(5));
        let mut restart = Restart::Transient;
        let mut shutdown = wink::supervisor::DEFAULT_SHUTDOWN;
        let mut workers = Vec::new();
        for arg in args {
            let Some((option, value)) = arg.split_once('=') else {
                workers.push(arg.as_str());
                continue;
            };
            let bad = || format!("bad {option}: `{value}`");
            match option {
                "strategy" => {
                    supervision.strategy = match value {
                        "one_for_one" => Strategy::OneForOne,
                        "one_for_all" => Strategy::OneForAll,
                        "rest_for_one" => Strategy::RestForOne,
                        _ => return Err(bad()),
                    }
                }
                "restart" => {
                    restart = match value {
                        "permanent" => Restart::Permanent,
                        "transient" => Restart::Transient,
                        "temporary" => Restart::Temporary,
                        _ => return Err(bad()),
                    }
                }
                "intensity" => {
                    let (n, ms) = value.split_once('/').ok_or_else(bad)?;
                    supervision.intensity = n.parse().map_err(|_| bad())?;
                    supervision.period = Duration::from_millis(ms.parse().map_err(|_| bad())?);
                }
                "shutdown" => {
                    shutdown = Duration::from_millis(value.parse().map_err(|_| bad())?);
                }
                _ => return Err(format!("unknown option `{option}`")),
            }
        }
        for worker in workers {
            let (tag, host) = match worker.split_once('@') {
                Some((tag, ip)) => {
                    let ip: IpAddr = ip.parse().map_err(|e| format!("worker `{worker}`: {e}"))?;
                    (tag, Some(ip))
                }
                None => (worker, None),
            };
            let name = if tag.contains('/') {
                tag.to_owned()
            } else {
                format!("crew/Worker#{tag}")
            };
            let mut child = ChildSpec::new(&name).map_err(|e| e.to_string())?;
            if let Some(ip) = host {
                child = child.at(Address::new(std::net::SocketAddr::new(ip, 0)));
            }
            child.restart = restart;
            child.shutdown = shutdown;
            supervision = supervision.child(child);
        }
        Ok(supervision)
    }
}

/// The worker: runs until `quit` (exits `normal`) or `crash` (errors).
#[wink::machine]
pub mod worker {
    /// Messages handled.
    #[derive(Debug, Default)]
    pub struct Worker {
        /// `work` messages handled.
        pub done: u32,
    }

    /// Its one state.
    pub enum State {
        /// Working.
        #[initial]
        Working,
    }

    impl Worker {
        #[receive(Working, "work")]
        fn work(&mut self, cx: &mut Context<Self>) {
            self.done += 1;
            cx.reply(format!("worked {}", self.done));
        }

        #[receive(Working, "quit")]
        fn quit(&mut self, cx: &mut Context<Self>) {
            cx.exit();
        }

        #[receive(Working, "crash")]
        fn crash(&mut self, _cx: &mut Context<Self>) -> Result<(), String> {
            Err("asked to crash".to_owned())
        }
    }
}

pub use boss::Boss;
pub use worker::Worker;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::control::ExitReason;
    use wink::control::Request;
    use wink::testing::{local, Harness};

    /// The `start` and `stop` requests the boss sent since the last
    /// look, as `start <name>` and `stop <port>`.
    fn requests(h: &mut Harness<Boss>) -> Vec<String> {
        let out = h
            .sent()
            .iter()
            .filter_map(|t| t.text.parse::<Request>().ok())
            .filter_map(|r| match r {
                Request::Start { name, .. } => Some(format!("start {name}")),
                Request::Stop { port, .. } => Some(format!("stop {port}")),
                _ => None,
            })
            .collect();
        h.clear();
        out
    }

    /// A boss of workers a, b, c (on ports 7001…) all started.
    fn boss_of_three(strategy: &str) -> Harness<Boss> {
        let mut h = Harness::new(Boss::default()).with_args([strategy, "a", "b", "c"]);
        h.start().unwrap();
        for (i, tag) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(
                requests(&mut h),
                [format!("start crew/Worker#{tag}")],
                "one at a time"
            );
            h.child_started(&format!("crew/Worker#{tag}"), local(7001 + i as u16))
                .unwrap();
        }
        assert!(requests(&mut h).is_empty());
        h
    }

    /// Worker `tag` (on `port`) crashes.
    fn crash(h: &mut Harness<Boss>, tag: &str, port: u16) {
        let name = format!("crew/Worker#{tag}");
        h.receive_from(local(port), &format!("errored {name} asked to crash"))
            .unwrap();
        h.receive_from(local(port), &format!("exited {name} error"))
            .unwrap();
    }

    /// Worker `tag` (on `port`) exits as stopped, and the next request is
    /// returned.
    fn stopped(h: &mut Harness<Boss>, tag: &str, port: u16) -> Vec<String> {
        h.receive_from(local(port), &format!("exited crew/Worker#{tag} stopped"))
            .unwrap();
        requests(h)
    }

    fn started(h: &mut Harness<Boss>, tag: &str, port: u16) -> Vec<String> {
        h.child_started(&format!("crew/Worker#{tag}"), local(port))
            .unwrap();
        requests(h)
    }

    #[test]
    fn one_for_one_restarts_only_the_worker_that_crashed() {
        let mut h = boss_of_three("strategy=one_for_one");
        crash(&mut h, "b", 7002);
        assert_eq!(requests(&mut h), ["start crew/Worker#b"]);
        assert!(started(&mut h, "b", 7012).is_empty());
        // Stopping the boss stops the workers, last first, each awaited.
        h.stop().unwrap();
        assert_eq!(requests(&mut h), ["stop 7003"]);
        assert_eq!(stopped(&mut h, "c", 7003), ["stop 7012"]);
        assert_eq!(stopped(&mut h, "b", 7012), ["stop 7001"]);
        assert!(h.ending().is_some() && !h.node().is_finished());
        assert!(stopped(&mut h, "a", 7001).is_empty());
        assert!(h.node().is_finished());
    }

    #[test]
    fn one_for_all_stops_the_others_in_reverse_and_starts_all_in_order() {
        let mut h = boss_of_three("strategy=one_for_all");
        crash(&mut h, "b", 7002);
        assert_eq!(requests(&mut h), ["stop 7003"]);
        assert_eq!(stopped(&mut h, "c", 7003), ["stop 7001"]);
        assert_eq!(stopped(&mut h, "a", 7001), ["start crew/Worker#a"]);
        assert_eq!(started(&mut h, "a", 7011), ["start crew/Worker#b"]);
        assert_eq!(started(&mut h, "b", 7012), ["start crew/Worker#c"]);
        assert!(started(&mut h, "c", 7013).is_empty());
    }

    #[test]
    fn rest_for_one_restarts_the_worker_and_those_after_it() {
        let mut h = boss_of_three("strategy=rest_for_one");
        crash(&mut h, "b", 7002);
        assert_eq!(requests(&mut h), ["stop 7003"]);
        assert_eq!(stopped(&mut h, "c", 7003), ["start crew/Worker#b"]);
        assert_eq!(started(&mut h, "b", 7012), ["start crew/Worker#c"]);
        assert!(started(&mut h, "c", 7013).is_empty());
        // a was never touched.
        crash(&mut h, "a", 7001);
        assert_eq!(requests(&mut h), ["stop 7013"]);
    }

    #[test]
    fn too_many_restarts_stop_the_rest_and_escalate_to_the_bosses_parent() {
        let mut h = Harness::new(Boss::default()).with_args(["intensity=1/1000", "a", "b"]);
        h.start().unwrap();
        started(&mut h, "a", 7001);
        started(&mut h, "b", 7002);
        crash(&mut h, "a", 7001);
        assert_eq!(requests(&mut h), ["start crew/Worker#a"]);
        assert!(started(&mut h, "a", 7011).is_empty());
        h.advance(std::time::Duration::from_millis(500));
        h.clear();
        crash(&mut h, "a", 7011);
        // Two restarts within a second: the boss stops b and errors.
        assert_eq!(requests(&mut h), ["stop 7002"]);
        h.receive_from(local(7002), "exited crew/Worker#b stopped")
            .unwrap();
        let ending = h.ending().unwrap();
        assert_eq!(ending.reason, ExitReason::Error);
        let to_parent: Vec<&str> = h
            .sent()
            .iter()
            .filter(|t| t.to == wink::testing::PARENT)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(to_parent.len(), 2, "{to_parent:?}");
        assert!(
            to_parent[0].starts_with(
                "errored test/Machine too many restarts: 2 within 1000 ms (intensity 1); crew/Worker#a exited error"
            ),
            "{to_parent:?}"
        );
        assert_eq!(to_parent[1], "exited test/Machine error");
    }

    #[test]
    fn boss_options_choose_the_strategy_restart_and_intensity() {
        let args: Vec<String> = [
            "strategy=rest_for_one",
            "restart=permanent",
            "intensity=2/800",
            "shutdown=50",
            "a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = boss::supervision(&args).unwrap();
        assert_eq!(s.strategy, wink::supervisor::Strategy::RestForOne);
        assert_eq!(
            (s.intensity, s.period),
            (2, std::time::Duration::from_millis(800))
        );
        assert_eq!(s.children[0].restart, wink::supervisor::Restart::Permanent);
        assert_eq!(s.children[0].shutdown, std::time::Duration::from_millis(50));
        assert_eq!(
            boss::supervision(&["strategy=simple_one_for_one".into()]).unwrap_err(),
            "bad strategy: `simple_one_for_one`"
        );
    }

    #[test]
    fn worker_quits_normally_and_crashes_with_an_error() {
        let mut h = Harness::new(Worker::default());
        h.start().unwrap();
        h.receive("work").unwrap();
        h.receive("quit").unwrap();
        assert_eq!(h.ending().map(|e| e.reason), Some(ExitReason::Normal));
        let mut h = Harness::new(Worker::default());
        h.start().unwrap();
        assert!(h.receive("crash").is_err());
        assert_eq!(h.ending().map(|e| e.reason), Some(ExitReason::Error));
    }
}
