//! A boss that supervises several workers, some on other hosts, and
//! restarts any that ends for a reason other than `normal`; and a worker
//! that runs until told to quit (or to crash).

use std::time::Duration;

/// The boss: `crew/Boss <worker>…`, each worker `<tag>` (on this host) or
/// `<tag>@<ip>` (on the host at `<ip>`, through its server), or a whole
/// machine name (`echo/Echo`). It starts `crew/Worker#<tag>` (or that
/// machine) for each, and when one exits for any reason but
/// `normal` (an error, a crash, a lost heartbeat) starts it again after
/// 100 ms: OTP's `transient` restart.
#[wink::machine]
pub mod boss {
    use super::Duration;
    use std::net::IpAddr;

    /// The workers and what became of them.
    #[derive(Debug, Default)]
    pub struct Boss {
        /// Each worker's tag and host (`None`: this host).
        pub workers: Vec<(String, Option<IpAddr>)>,
        /// Workers started so far, restarts included.
        pub starts: u32,
        /// Workers that ended normally and are not restarted.
        pub done: Vec<String>,
    }

    /// Its one state.
    pub enum State {
        /// Starts every worker on entry.
        #[initial]
        Bossing,
    }

    impl Boss {
        #[entry(Bossing)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            for arg in cx.args().to_vec() {
                let (tag, host) = match arg.split_once('@') {
                    Some((tag, ip)) => {
                        let ip = ip.parse().map_err(|e| format!("worker `{arg}`: {e}"))?;
                        (tag.to_owned(), Some(ip))
                    }
                    None => (arg.clone(), None),
                };
                self.workers.push((tag, host));
            }
            for i in 0..self.workers.len() {
                self.start(cx, i)?;
            }
            Ok(())
        }

        #[receive(Bossing, "exited")]
        fn exited(
            &mut self,
            cx: &mut Context<Self>,
            child: MachineName,
            reason: ExitReason,
        ) -> Result<(), String> {
            let tag = match child.tag() {
                Some(tag) if child.package() == "crew" => tag.to_owned(),
                _ => child.to_string(),
            };
            if reason.is_normal() {
                info!(cx.log(), "Boss: {} is done", child);
                self.done.push(tag);
                return Ok(());
            }
            info!(
                cx.log(),
                "Boss: {} exited ({}): restarting it", child, reason
            );
            let me = cx.address();
            cx.send_after(Duration::from_millis(100), me, format!("restart {tag}"));
            Ok(())
        }

        #[receive(Bossing, "restart")]
        fn restart(&mut self, cx: &mut Context<Self>, tag: String) -> Result<(), String> {
            match self.workers.iter().position(|(t, _)| *t == tag) {
                Some(i) => self.start(cx, i),
                None => Err(format!("no worker {tag}")),
            }
        }

        #[receive(Bossing)]
        fn lifecycle(&mut self, _cx: &mut Context<Self>, _message: &str) {}
    }

    impl Boss {
        fn start(&mut self, cx: &mut Context<Self>, i: usize) -> Result<(), String> {
            let (tag, host) = self.workers[i].clone();
            let at = host.map(|ip| Address::new(std::net::SocketAddr::new(ip, 0)));
            self.starts += 1;
            let name = if tag.contains('/') {
                tag
            } else {
                format!("crew/Worker#{tag}")
            };
            cx.spawn_with(&name, at, &[] as &[&str])
                .map_err(|e| e.to_string())
        }
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
    use wink::hsm::Effect;
    use wink::testing::{local, Harness};

    #[test]
    fn boss_starts_every_worker_here_or_on_their_host() {
        let mut h = Harness::new(Boss::default()).with_args(["a", "b@10.0.0.2"]);
        h.start().unwrap();
        let spawns: Vec<String> = h
            .effects()
            .iter()
            .filter_map(|e| match e {
                Effect::Spawn { name, address, .. } => Some(format!(
                    "{name} {}",
                    address.map_or("-".to_owned(), |a| a.to_string())
                )),
                _ => None,
            })
            .collect();
        assert_eq!(spawns, ["crew/Worker#a -", "crew/Worker#b 10.0.0.2:0"]);
    }

    #[test]
    fn boss_restarts_a_worker_that_failed_but_not_one_that_quit() {
        let mut h = Harness::new(Boss::default()).with_args(["a", "b"]);
        h.start().unwrap();
        let (a, b) = (local(7001), local(7002));
        h.child_started("crew/Worker#a", a).unwrap();
        h.child_started("crew/Worker#b", b).unwrap();
        h.receive_from(a, "exited crew/Worker#a normal").unwrap();
        h.receive_from(b, "errored crew/Worker#b asked to crash")
            .unwrap();
        h.receive_from(b, "exited crew/Worker#b error").unwrap();
        h.advance(std::time::Duration::from_millis(150));
        assert_eq!(h.machine().done, ["a"]);
        assert_eq!(h.machine().starts, 3, "b restarted, a not");
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
