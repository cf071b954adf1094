//! A media player: three levels of states, entry and exit actions on each, an
//! empty receiver, typed arguments and a self-transition.
//!
//! ```text
//! Powered            "play <track>", "volume <0-100>", "eject", and an
//!                    empty receiver that ignores anything else
//!   Idle (initial)
//!   Active           "stop"
//!     Playing        "pause", "restart"
//!     Paused         "resume"
//! ```

/// The player machine.
#[wink::machine]
pub mod player {
    /// What the player knows, kept across states.
    #[derive(Debug, Default)]
    pub struct Player {
        /// The track being played or paused.
        pub track: Option<u32>,
        /// The volume, 0 to 100.
        pub volume: u8,
        /// Messages the empty receiver of `Powered` ignored.
        pub ignored: Vec<String>,
    }

    /// The player's states.
    pub enum State {
        /// Switched on.
        Powered,
        /// Nothing loaded.
        #[initial]
        #[parent(Powered)]
        Idle,
        /// A track is loaded.
        #[parent(Powered)]
        Active,
        /// The track is playing.
        #[parent(Active)]
        Playing,
        /// The track is paused.
        #[parent(Active)]
        Paused,
    }

    impl Player {
        #[entry(Powered)]
        fn power_on(&mut self, cx: &mut Context<Self>) {
            self.volume = 50;
            info!(cx.log(), "Player: powered on");
        }

        #[exit(Powered)]
        fn power_off(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "Player: powered off");
        }

        #[receive(Powered, "play")]
        fn play(&mut self, cx: &mut Context<Self>, track: u32) {
            self.track = Some(track);
            cx.transition(State::Playing);
        }

        #[receive(Powered, "volume")]
        fn set_volume(&mut self, _cx: &mut Context<Self>, level: u8) -> Result<(), String> {
            if level > 100 {
                return Err(format!("volume {level} is above 100"));
            }
            self.volume = level;
            Ok(())
        }

        #[receive(Powered, "eject")]
        fn eject(&mut self, cx: &mut Context<Self>) {
            self.track = None;
            cx.transition(State::Powered);
        }

        #[receive(Powered)]
        fn ignore(&mut self, cx: &mut Context<Self>, message: &str) {
            warn!(cx.log(), "Player: ignoring `{}`", message);
            self.ignored.push(message.to_owned());
        }

        #[entry(Idle)]
        fn enter_idle(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "Player: idle");
        }

        #[exit(Idle)]
        fn exit_idle(&mut self, _cx: &mut Context<Self>) {}

        #[entry(Active)]
        fn enter_active(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "Player: loaded track {:?}", self.track);
        }

        #[exit(Active)]
        fn exit_active(&mut self, _cx: &mut Context<Self>) {}

        #[receive(Active, "stop")]
        fn stop(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Idle);
        }

        #[entry(Playing)]
        fn enter_playing(&mut self, cx: &mut Context<Self>) {
            info!(cx.log(), "Player: playing track {:?}", self.track);
        }

        #[exit(Playing)]
        fn exit_playing(&mut self, _cx: &mut Context<Self>) {}

        #[receive(Playing, "pause")]
        fn pause(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Paused);
        }

        #[receive(Playing, "restart")]
        fn restart(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Playing);
        }

        #[entry(Paused)]
        fn enter_paused(&mut self, _cx: &mut Context<Self>) {}

        #[exit(Paused)]
        fn exit_paused(&mut self, _cx: &mut Context<Self>) {}

        #[receive(Paused, "resume")]
        fn resume(&mut self, cx: &mut Context<Self>) {
            cx.transition(State::Playing);
        }
    }
}

pub use player::{Player, State};

#[cfg(test)]
mod tests {
    use super::*;
    use wink::testing::Harness;

    /// A started player, moved to `state` through messages.
    fn player_in(messages: &[&str]) -> Harness<Player> {
        let mut h = Harness::new(Player::default());
        h.start().unwrap();
        for message in messages {
            h.receive(message).unwrap();
        }
        h.clear();
        h
    }

    fn after(h: &mut Harness<Player>, message: &str) -> Vec<String> {
        h.clear();
        h.receive(message).unwrap();
        h.trace()
    }

    #[test]
    fn start_enters_root_then_initial() {
        let mut h = Harness::new(Player::default());
        h.start().unwrap();
        assert_eq!(h.trace(), ["+Powered", "+Idle"]);
        assert_eq!(h.machine().volume, 50);
    }

    #[test]
    fn sibling_transition_exits_one_enters_the_other() {
        let mut h = player_in(&["play 1"]);
        assert_eq!(after(&mut h, "pause"), ["-Playing", "+Paused"]);
        assert_eq!(after(&mut h, "resume"), ["-Paused", "+Playing"]);
    }

    #[test]
    fn transition_to_ancestor_exits_down_to_it_without_reentering() {
        let mut h = player_in(&["play 1"]);
        assert_eq!(after(&mut h, "eject"), ["-Playing", "-Active"]);
        assert_eq!(h.state(), "Powered");
        assert_eq!(h.machine().track, None);
    }

    #[test]
    fn transition_to_descendant_only_enters() {
        let mut h = player_in(&["play 1", "eject"]);
        assert_eq!(after(&mut h, "play 2"), ["+Active", "+Playing"]);
        assert_eq!(h.machine().track, Some(2));
    }

    #[test]
    fn transition_to_self_exits_and_reenters() {
        let mut h = player_in(&["play 1"]);
        assert_eq!(after(&mut h, "restart"), ["-Playing", "+Playing"]);
    }

    #[test]
    fn transition_across_subtrees_goes_through_the_common_ancestor() {
        let mut h = player_in(&["play 1", "pause"]);
        assert_eq!(after(&mut h, "stop"), ["-Paused", "-Active", "+Idle"]);
        assert_eq!(after(&mut h, "play 4"), ["-Idle", "+Active", "+Playing"]);
    }

    #[test]
    fn empty_receiver_takes_what_no_state_of_the_lineage_has_a_receiver_for() {
        let mut h = player_in(&["play 1", "pause"]);
        assert_eq!(after(&mut h, "rewind 10"), Vec::<String>::new());
        // `pause` has a receiver, but in Playing, not in the lineage of Paused.
        assert_eq!(after(&mut h, "pause"), Vec::<String>::new());
        assert_eq!(h.machine().ignored, ["rewind 10", "pause"]);
        assert_eq!(h.state(), "Paused");
    }

    #[test]
    fn typed_arguments_are_parsed_and_checked() {
        let mut h = player_in(&[]);
        h.receive("volume 80").unwrap();
        assert_eq!(h.machine().volume, 80);
        let err = h.receive("volume loud").unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiver `set_volume`: argument `level` cannot be `loud`: invalid digit found in string"
        );
        // As in a process, the machine errored: it takes nothing more.
        assert_eq!(
            h.receive("volume 80").unwrap_err().to_string(),
            "machine is not running"
        );
        let mut h = player_in(&[]);
        let err = h.receive("volume 101").unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiver `set_volume` failed: volume 101 is above 100"
        );
    }

    #[test]
    fn stop_exits_every_level() {
        let mut h = player_in(&["play 1", "pause"]);
        h.stop().unwrap();
        assert_eq!(h.trace(), ["-Paused", "-Active", "-Powered"]);
    }
}
