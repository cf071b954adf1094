//! `wink send [-r N] <machine-address> <message…>`: send a machine a
//! message, print its first N replies, and wait until it acknowledged.

use wink::Address;

use crate::client::{no_answer, print, Client, Failure};

/// Send a message to a machine and print its replies.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many replies to wait for and print.
    #[arg(short, long, default_value_t = 0)]
    pub replies: usize,
    /// The machine's address: :<port> or <ip>:<port>.
    pub machine: Address,
    /// The message: a name and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub message: Vec<String>,
}

/// Sends the message, prints `args.replies` replies from the machine, then
/// waits until the machine acknowledged everything.
pub fn run(client: &mut Client, args: Args) -> Result<(), Failure> {
    let machine = args.machine;
    client.send(machine, message(&args.message))?;
    let timeout = client.timeout();
    for _ in 0..args.replies {
        let reply = client.receive(Some(timeout), |from, text| reply_from(machine, from, text))?;
        match reply {
            Some(text) => {
                if let Some(failure) = failure(machine, &text) {
                    return Err(failure);
                }
                print([text])?
            }
            None => return Err(no_answer(machine, timeout)),
        }
    }
    if !client.settle()? {
        return Err(Failure::new(format!(
            "{machine} did not acknowledge the message"
        )));
    }
    Ok(())
}

/// The message the words make: joined by one space each, as the shell
/// split them.
fn message(words: &[String]) -> String {
    words.join(" ")
}

/// The failure `failed <name> <why>` from `machine` says (it errored on
/// our message, and exits), or `refused <name> <why>` (it refused it, and
/// goes on).
fn failure(machine: Address, text: &str) -> Option<Failure> {
    let (word, said) = if let Some(rest) = text.strip_prefix(wink::node::FAILED) {
        ("failed on", rest)
    } else {
        ("refused", text.strip_prefix(wink::node::REFUSED)?)
    };
    let rest = said.strip_prefix(' ')?;
    let (name, why) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Failure::new(format!("{machine} {word} `{name}`: {why}")))
}

/// `text` if it is a reply from `machine`: anything it sends; messages
/// from others are not.
fn reply_from(machine: Address, from: Address, text: &str) -> Option<String> {
    (from == machine).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_make_one_message() {
        let words = ["hello  wide", "world"].map(str::to_owned);
        assert_eq!(message(&words), "hello  wide world");
    }

    #[test]
    fn a_failed_message_is_a_failure_with_its_reason() {
        let machine: Address = "127.0.0.1:42101".parse().unwrap();
        let failure = failure(machine, "failed ping boom: no such thing").unwrap();
        assert_eq!(
            failure.to_string(),
            "127.0.0.1:42101 failed on `ping`: boom: no such thing"
        );
        assert!(super::failure(machine, "failedness is a word").is_none());
        let refused = super::failure(machine, "refused withdraw not enough money").unwrap();
        assert_eq!(
            refused.to_string(),
            "127.0.0.1:42101 refused `withdraw`: not enough money"
        );
        assert!(super::failure(machine, "pong").is_none());
    }

    #[test]
    fn only_the_machine_replies() {
        let machine: Address = "127.0.0.1:42101".parse().unwrap();
        let stranger: Address = "127.0.0.1:42102".parse().unwrap();
        assert_eq!(
            reply_from(machine, machine, "hello"),
            Some("hello".to_owned())
        );
        assert_eq!(reply_from(machine, stranger, "hello"), None);
    }
}
