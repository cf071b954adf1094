//! Pinger: sends `ping 0` … `ping <n-1>` to a peer (an `echo/Echo`, say),
//! checks that every reply comes back once and in order, tells its parent
//! `pinged <n>` and exits. `pinger/Pinger <peer> [n]` (n defaults to 100).

/// The pinger machine.
#[wink::machine]
pub mod pinger {
    /// What it is waiting for.
    #[derive(Debug, Default)]
    pub struct Pinger {
        /// How many pings it sends.
        pub count: u64,
        /// The reply it expects next.
        pub next: u64,
    }

    /// Its one state.
    pub enum State {
        /// Pings sent, replies coming back.
        #[initial]
        Pinging,
    }

    impl Pinger {
        #[entry(Pinging)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            let peer: Address = match cx.args().first() {
                Some(peer) => peer.parse().map_err(|e| format!("peer `{peer}`: {e}"))?,
                None => return Err("usage: pinger/Pinger <peer> [count]".to_owned()),
            };
            self.count = match cx.args().get(1) {
                Some(n) => n.parse().map_err(|e| format!("count `{n}`: {e}"))?,
                None => 100,
            };
            for i in 0..self.count {
                cx.send(peer, format!("ping {i}"));
            }
            self.finish_if_done(cx);
            Ok(())
        }

        #[receive(Pinging, "ping")]
        fn reply(&mut self, cx: &mut Context<Self>, n: u64) -> Result<(), String> {
            if n != self.next {
                return Err(format!("reply {n} arrived when {} was due", self.next));
            }
            self.next += 1;
            self.finish_if_done(cx);
            Ok(())
        }

        fn finish_if_done(&mut self, cx: &mut Context<Self>) {
            if self.next == self.count {
                let parent = cx.parent();
                cx.send(parent, format!("pinged {}", self.count));
                cx.exit();
            }
        }
    }
}

pub use pinger::Pinger;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::hsm::MachineError;
    use wink::testing::Harness;

    #[test]
    fn pings_then_reports_and_exits_when_every_reply_is_back() {
        let mut h = Harness::new(Pinger::default()).with_args(["127.0.0.1:7000", "3"]);
        h.start().unwrap();
        assert_eq!(h.sent_texts(), ["ping 0", "ping 1", "ping 2"]);
        h.clear();
        for i in 0..3 {
            h.receive(&format!("ping {i}")).unwrap();
        }
        assert_eq!(h.sent_texts(), ["pinged 3"]);
        assert_eq!(h.machine().next, 3);
    }

    #[test]
    fn a_reply_out_of_order_is_an_error() {
        let mut h = Harness::new(Pinger::default()).with_args(["127.0.0.1:7000", "3"]);
        h.start().unwrap();
        let error = h.receive("ping 1").unwrap_err();
        assert!(matches!(error, MachineError::Receiver(_)), "{error:?}");
        assert!(error
            .to_string()
            .ends_with("reply 1 arrived when 0 was due"));
    }
}
