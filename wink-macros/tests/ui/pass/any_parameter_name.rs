// Parameters may have any name, the macro's own included (`args`, `text`,
// `cx` with the context called `ctx`), or none (`_`): the generated code's
// names never meet them.

#[wink::machine]
mod lamp {
    #[derive(Default)]
    pub struct Lamp {
        pub seen: Vec<String>,
    }

    pub enum State {
        #[initial]
        On,
    }

    impl Lamp {
        #[receive(On, "set")]
        fn set(&mut self, _ctx: &mut Context<Self>, args: u8, level: u8) {
            self.seen.push(format!("set {args} {level}"));
        }

        #[receive(On, "shade")]
        fn shade(&mut self, ctx: &mut Context<Self>, cx: u8, text: String) {
            let _ = ctx.address();
            self.seen.push(format!("shade {cx} {text}"));
        }

        #[receive(On, "skip")]
        fn skip(&mut self, _cx: &mut Context<Self>, _: u8, kept: u8) {
            self.seen.push(format!("skip {kept}"));
        }

        #[receive(On, "say")]
        fn say(&mut self, _cx: &mut Context<Self>, args: &str) {
            self.seen.push(format!("say {args}"));
        }
    }
}

fn main() {
    let mut h = wink::testing::Harness::new(lamp::Lamp::default());
    h.start().unwrap();
    h.receive("set 1 2").unwrap();
    h.receive("shade 3 blue").unwrap();
    h.receive("skip 4 5").unwrap();
    h.receive("say what  now").unwrap();
    assert_eq!(
        h.machine().seen,
        ["set 1 2", "shade 3 blue", "skip 5", "say what  now"]
    );
}
