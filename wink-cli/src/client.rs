//! The request/reply plumbing the subcommands share.
//!
//! A subcommand is a [`Conversation`]: it says which request to send to
//! which server and what each reply to it means, as plain methods with no
//! sockets or clock, so its behaviour is tested by [`replay`]ing replies to
//! it. [`Client::ask`] is the thin loop that moves those replies from the
//! socket: it numbers the request, sends it, hands the conversation only
//! the replies from the server asked with the request's id ([`answer`]),
//! prints what it says to print, and waits as long as it says to.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wink::auth::Keys;
use wink::control::{Reply, Request, RequestId};
use wink::runtime::{Config, Endpoint};
use wink::Address;

/// What went wrong, printed as `wink: <message>` with exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    /// A failure saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Request ids, counted from 1 per process.
#[derive(Debug)]
pub struct Ids {
    next: u64,
}

impl Ids {
    /// The first id is 1.
    pub fn new() -> Self {
        Ids { next: 1 }
    }

    /// The next id.
    pub fn next_id(&mut self) -> RequestId {
        let id = RequestId(self.next);
        self.next = self.next.wrapping_add(1);
        id
    }
}

impl Default for Ids {
    fn default() -> Self {
        Ids::new()
    }
}

/// How long to wait for the next reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// The `--timeout`.
    Timeout,
    /// The `--timeout` and this much more (a stop's grace period).
    Longer(Duration),
    /// As long as it takes (`start -f` once the machine runs).
    Forever,
}

impl Patience {
    /// How long that is with `--timeout` `timeout`; `None` for no limit.
    pub fn limit(self, timeout: Duration) -> Option<Duration> {
        match self {
            Patience::Timeout => Some(timeout),
            Patience::Longer(extra) => Some(timeout.saturating_add(extra)),
            Patience::Forever => None,
        }
    }
}

/// What a conversation does after a reply.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for another reply, this long.
    Wait(Patience),
    /// The command is over: exit status 0, or 1 with the failure.
    Done(Result<(), Failure>),
}

/// One request's side of the talk with a server: what to ask and what each
/// reply to it means. No I/O: the lines to print go to `out`.
pub trait Conversation {
    /// The server asked.
    fn server(&self) -> Address;

    /// The request, given its id.
    fn request(&self, id: RequestId) -> Request;

    /// Handles one reply to the request (it came from [`Self::server`] with
    /// the request's id), pushing the lines to print to `out`.
    fn handle(&mut self, reply: Reply, out: &mut Vec<String>) -> Next;

    /// The failure when no reply came within `waited`.
    fn silence(&self, waited: Duration) -> Failure {
        no_answer(self.server(), waited)
    }
}

/// `no answer from <who> within <t>s (is it running?)`.
pub fn no_answer(who: Address, waited: Duration) -> Failure {
    Failure::new(format!(
        "no answer from {who} within {} (is it running?)",
        seconds(waited)
    ))
}

/// `<server>: unexpected answer `<reply>``: a reply to the request that
/// does not answer its word.
pub fn unexpected(server: Address, reply: &Reply) -> Failure {
    Failure::new(format!("{server}: unexpected answer `{reply}`"))
}

/// A duration as `--timeout` takes it: `0.5s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// The reply `text` from `from` is, if it answers request `id` sent to
/// `server`: a reply word from that server, with that id. An `error` whose
/// id is `-` from that server counts too: the server could not read the
/// id, and this is the only request the command sent it. Anything else
/// (another sender, another id, not a reply) is not for this conversation.
pub fn answer(server: Address, id: RequestId, from: Address, text: &str) -> Option<Reply> {
    if from != server {
        return None;
    }
    let reply: Reply = text.parse().ok()?;
    match reply.id() {
        Some(theirs) if theirs != id => None,
        _ => Some(reply),
    }
}

/// What a conversation printed and how it ended.
#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The lines printed on stdout.
    pub lines: Vec<String>,
    /// How it ended; `None` if it is still waiting, without a limit.
    pub result: Option<Result<(), Failure>>,
}

#[cfg(test)]
impl Outcome {
    /// The exit status, once it ended.
    pub fn status(&self) -> Option<u8> {
        self.result.as_ref().map(|r| u8::from(r.is_err()))
    }
}

/// Plays `replies` (sender, text), in order, to `conversation` about
/// request `id`, as [`Client::ask`] would. If they run out before it is
/// done, it hears the silence it would after waiting as long as it asked
/// to, with `--timeout` `timeout`.
#[cfg(test)]
pub fn replay(
    mut conversation: impl Conversation,
    id: RequestId,
    timeout: Duration,
    replies: &[(Address, &str)],
) -> Outcome {
    let server = conversation.server();
    let mut lines = Vec::new();
    let mut patience = Patience::Timeout;
    for &(from, text) in replies {
        if let Some(reply) = answer(server, id, from, text) {
            match conversation.handle(reply, &mut lines) {
                Next::Wait(next) => patience = next,
                Next::Done(result) => {
                    return Outcome {
                        lines,
                        result: Some(result),
                    }
                }
            }
        }
    }
    let result = patience
        .limit(timeout)
        .map(|waited| Err(conversation.silence(waited)));
    Outcome { lines, result }
}

/// How long one wait lasts when there is no limit: the loop just waits
/// again.
const NO_LIMIT_STEP: Duration = Duration::from_secs(3600);

/// The command's endpoint, its request ids and its `--timeout`.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    ids: Ids,
    timeout: Duration,
}

impl Client {
    /// Listens on `address` with the transport configured by the
    /// environment, sealing with `keys` if the cluster has them.
    pub fn bind(
        address: Address,
        timeout: Duration,
        keys: Option<Arc<Keys>>,
    ) -> Result<Self, Failure> {
        let mut config = Config::from_env().map_err(|e| Failure::new(e.to_string()))?;
        config.transport.keys = keys;
        let endpoint = Endpoint::bind(address, config.transport)
            .map_err(|e| Failure::new(format!("cannot listen on {address}: {e}")))?;
        Ok(Client {
            endpoint,
            ids: Ids::new(),
            timeout,
        })
    }

    /// The `--timeout`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the conversation's request to its server, then hands it the
    /// replies, printing what it says to print, until it is done or no
    /// reply comes in time.
    pub fn ask(&mut self, mut conversation: impl Conversation) -> Result<(), Failure> {
        let server = conversation.server();
        let id = self.ids.next_id();
        self.send(server, conversation.request(id).to_string())?;
        let mut patience = Patience::Timeout;
        let mut lines = Vec::new();
        loop {
            let limit = patience.limit(self.timeout);
            let reply = self.receive(limit, |from, text| answer(server, id, from, text))?;
            let Some(reply) = reply else {
                return Err(conversation.silence(limit.unwrap_or(self.timeout)));
            };
            let next = conversation.handle(reply, &mut lines);
            print(lines.drain(..))?;
            match next {
                Next::Wait(next) => patience = next,
                Next::Done(result) => return result,
            }
        }
    }

    /// Queues `message` for `to`.
    pub fn send(&mut self, to: Address, message: impl Into<String>) -> Result<(), Failure> {
        self.endpoint
            .send(to, message)
            .map_err(|e| Failure::new(format!("cannot send to {to}: {e}")))
    }

    /// The first message `wanted` takes, waiting at most `limit` (`None`:
    /// no limit); `None` if none came in time.
    pub fn receive<T>(
        &mut self,
        limit: Option<Duration>,
        mut wanted: impl FnMut(Address, &str) -> Option<T>,
    ) -> Result<Option<T>, Failure> {
        let give_up = limit.and_then(|limit| Instant::now().checked_add(limit));
        loop {
            let left = match give_up {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => NO_LIMIT_STEP,
            };
            match self.endpoint.recv_timeout(left).map_err(socket)? {
                Some((from, text)) => {
                    if let Some(taken) = wanted(from, &text) {
                        return Ok(Some(taken));
                    }
                }
                None if give_up.is_some() => return Ok(None),
                None => {}
            }
        }
    }

    /// Runs the endpoint until everything sent is acknowledged or given
    /// up on, at most `--timeout`: true if all of it was acknowledged.
    pub fn settle(&mut self) -> Result<bool, Failure> {
        let settled = self.endpoint.settle(self.timeout).map_err(socket)?;
        Ok(settled && self.endpoint.stats().gave_up == 0)
    }
}

fn socket(e: io::Error) -> Failure {
    Failure::new(format!("socket error: {e}"))
}

/// Writes `lines` to stdout, now.
pub fn print(lines: impl IntoIterator<Item = String>) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}").map_err(stdout_failure)?;
    }
    stdout.flush().map_err(stdout_failure)
}

fn stdout_failure(e: io::Error) -> Failure {
    Failure::new(format!("cannot write to standard output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn ids_count_from_one() {
        let mut ids = Ids::new();
        assert_eq!(ids.next_id(), RequestId(1));
        assert_eq!(ids.next_id(), RequestId(2));
        assert_eq!(ids.next_id(), RequestId(3));
    }

    #[test]
    fn an_answer_comes_from_the_server_asked_with_the_request_id() {
        let server = address("127.0.0.1:42000");
        let id = RequestId(1);
        assert_eq!(
            answer(server, id, server, "listed 1 0"),
            Some(Reply::Listed { id, count: 0 })
        );
        // Another sender, another id: not an answer.
        let stranger = address("127.0.0.1:42001");
        assert_eq!(answer(server, id, stranger, "listed 1 0"), None);
        assert_eq!(answer(server, id, server, "listed 2 0"), None);
        // Not a reply, or a malformed one: not an answer either.
        assert_eq!(answer(server, id, server, "started echo/Echo 1"), None);
        assert_eq!(answer(server, id, server, "listed 1"), None);
        assert_eq!(answer(server, id, server, "hello world"), None);
    }

    #[test]
    fn an_error_without_an_id_from_the_server_answers_the_request() {
        let server = address("127.0.0.1:42000");
        let reply = answer(server, RequestId(1), server, "error - - empty request");
        assert!(
            matches!(&reply, Some(Reply::Error { id: None, reason, .. }) if reason == "empty request"),
            "{reply:?}"
        );
        let other = answer(server, RequestId(1), server, "error 2 list no");
        assert_eq!(other, None);
    }

    #[test]
    fn patience_is_the_timeout_more_or_none() {
        let t = Duration::from_secs(5);
        assert_eq!(Patience::Timeout.limit(t), Some(t));
        assert_eq!(
            Patience::Longer(Duration::from_millis(2500)).limit(t),
            Some(Duration::from_millis(7500))
        );
        assert_eq!(Patience::Forever.limit(t), None);
    }

    #[test]
    fn silence_names_the_server_and_the_wait() {
        let failure = no_answer(address("127.0.0.1:1"), Duration::from_millis(300));
        assert_eq!(
            failure.to_string(),
            "no answer from 127.0.0.1:1 within 0.3s (is it running?)"
        );
    }
}
