// `Option<T>` takes the next word if there is one, `Vec<T>` every word
// left; a word in double quotes is one word, spaces and all.

#[wink::machine]
mod guest {
    #[derive(Default)]
    pub struct Guest {
        pub seen: Vec<String>,
    }

    pub enum State {
        #[initial]
        Here,
    }

    impl Guest {
        #[receive(Here, "name")]
        fn name(&mut self, _cx: &mut Context<Self>, first: String, last: Option<String>) {
            self.seen.push(format!("{first}|{}", last.unwrap_or_default()));
        }

        #[receive(Here, "sum")]
        fn sum(&mut self, _cx: &mut Context<Self>, label: String, terms: Vec<i64>) {
            self.seen.push(format!("{label}={}", terms.iter().sum::<i64>()));
        }
    }
}

fn main() {
    let mut h = wink::testing::Harness::new(guest::Guest::default());
    h.start().unwrap();
    h.receive(r#"name "Ada Byron" Lovelace"#).unwrap();
    h.receive("name Grace").unwrap();
    h.receive(r#"sum "a \"total\"" 1 2 3"#).unwrap();
    h.receive("sum none").unwrap();
    assert_eq!(
        h.machine().seen,
        ["Ada Byron|Lovelace", "Grace|", r#"a "total"=6"#, "none=0"]
    );
    assert!(h.receive("sum x 1 two").is_err());
}
