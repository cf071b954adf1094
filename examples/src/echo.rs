//! Echo: replies to every message with the same text.

/// The echo machine.
#[wink::machine]
pub mod echo {
    /// How many messages it echoed.
    #[derive(Debug, Default)]
    pub struct Echo {
        /// Messages echoed.
        pub echoed: u64,
    }

    /// Its one state.
    pub enum State {
        /// Echoes anything.
        #[initial]
        Echoing,
    }

    impl Echo {
        #[receive(Echoing)]
        fn echo(&mut self, cx: &mut Context<Self>, message: &str) {
            self.echoed += 1;
            cx.reply(message);
        }
    }
}

pub use echo::Echo;

#[cfg(test)]
mod tests {
    use super::*;
    use wink::testing::Harness;

    #[test]
    fn replies_with_the_same_text() {
        let mut h = Harness::new(Echo::default());
        h.start().unwrap();
        h.receive("hello  wide world").unwrap();
        assert_eq!(h.sent_texts(), ["hello  wide world"]);
    }
}
