//! Host and Greeter: a parent that starts a child on a chosen port with
//! arguments, and a child that greets its parent with them, then exits.

/// The host: `greeter/Host <port>|<ip>:<port> <guest>` starts
/// `greeter/Greeter#<guest>` on that port of this host, or at that address on
/// another host, with `<guest>` as its argument.
#[wink::machine]
pub mod host {
    /// Greetings heard.
    #[derive(Debug, Default)]
    pub struct Host {
        /// What the greeter said.
        pub heard: Vec<String>,
    }

    /// Its one state.
    pub enum State {
        /// Starts the greeter on entry.
        #[initial]
        Hosting,
    }

    impl Host {
        #[entry(Hosting)]
        fn enter(&mut self, cx: &mut Context<Self>) -> Result<(), String> {
            // `<port>` on this host, or `<ip>:<port>` on another host (whose
            // server then starts the greeter).
            let at = match cx.args().first() {
                Some(at) if at.contains(':') => at.parse().map_err(|e| format!("{e}"))?,
                Some(port) => {
                    let port: u16 = port.parse().map_err(|e| format!("port `{port}`: {e}"))?;
                    cx.address().with_port(port)
                }
                None => cx.address().with_port(0),
            };
            let guest = cx
                .args()
                .get(1)
                .cloned()
                .unwrap_or_else(|| "Alice".to_owned());
            cx.spawn_with(
                &format!("greeter/Greeter#{guest}"),
                Some(at),
                &[guest.as_str()],
            )
            .map_err(|e| e.to_string())
        }

        #[receive(Hosting, "hello")]
        fn hello(&mut self, cx: &mut Context<Self>, name: String) {
            info!(cx.log(), "Host: {} says hello from {}", name, cx.sender());
            self.heard.push(name);
        }

        #[receive(Hosting)]
        fn lifecycle(&mut self, cx: &mut Context<Self>, message: &str) {
            info!(cx.log(), "Host: {}", message);
        }
    }
}

/// The greeter: says `hello <name>` to its parent and exits.
#[wink::machine]
pub mod greeter {
    /// Nothing to keep.
    #[derive(Debug, Default)]
    pub struct Greeter;

    /// Its one state.
    pub enum State {
        /// Greets on entry.
        #[initial]
        Greeting,
    }

    impl Greeter {
        #[entry(Greeting)]
        fn enter(&mut self, cx: &mut Context<Self>) {
            let name = cx
                .args()
                .first()
                .cloned()
                .unwrap_or_else(|| "nobody".to_owned());
            let parent = cx.parent();
            cx.send(parent, format!("hello {name}"));
            cx.exit();
        }
    }
}

pub use greeter::Greeter;
pub use host::Host;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::hsm::Effect;
    use wink::testing::Harness;

    #[test]
    fn host_spawns_greeter_on_chosen_port_with_arguments() {
        let mut h = Harness::new(Host::default()).with_args(["7000", "Bob"]);
        h.start().unwrap();
        let [Effect::Spawn {
            name,
            address,
            args,
        }] = h.effects()
        else {
            panic!("{:?}", h.effects())
        };
        assert_eq!(name.to_string(), "greeter/Greeter#Bob");
        assert_eq!(address.map(|a| a.port()), Some(7000));
        assert_eq!(args, &["Bob"]);
    }

    #[test]
    fn host_spawns_greeter_on_another_host() {
        let mut h = Harness::new(Host::default()).with_args(["10.0.0.2:7000", "Bob"]);
        h.start().unwrap();
        let [Effect::Spawn { address, .. }] = h.effects() else {
            panic!("{:?}", h.effects())
        };
        assert_eq!(
            address.map(|a| a.to_string()).as_deref(),
            Some("10.0.0.2:7000")
        );
    }

    #[test]
    fn greeter_greets_parent_and_exits() {
        let mut h = Harness::new(Greeter).with_args(["Bob"]);
        h.start().unwrap();
        assert_eq!(h.sent_texts(), ["hello Bob"]);
        assert_eq!(h.effects().last(), Some(&Effect::Exit));
    }
}
