//! Echo: replies to every message with the same text, except `words
//! <word>…`, which it answers with the words it read, one in brackets each
//! (a word in double quotes is one word: `docs/semantics.md`, "Words").

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
        #[receive(Echoing, "words")]
        fn words(&mut self, cx: &mut Context<Self>, words: Vec<String>) {
            self.echoed += 1;
            let read: Vec<String> = words.iter().map(|w| format!("[{w}]")).collect();
            cx.reply(format!("{} words: {}", words.len(), read.join(" ")));
        }

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

    #[test]
    fn words_says_which_words_it_read() {
        let mut h = Harness::new(Echo::default());
        h.start().unwrap();
        h.receive(r#"words "Ada Byron" Lovelace "" "say \"hi\"""#)
            .unwrap();
        assert_eq!(
            h.sent_texts(),
            [r#"4 words: [Ada Byron] [Lovelace] [] [say "hi"]"#]
        );
    }
}
