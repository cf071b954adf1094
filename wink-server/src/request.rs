//! The requests a server understands, parsed from message text.

use wink::address::AddressError;
use wink::name::NameError;
use wink::{Address, MachineName};

/// One request to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `start <name> <address> [args…]`: fork `<dir>/<package>/<executable>`.
    Start {
        /// The machine to start.
        name: MachineName,
        /// `:<port>` (this host) or `<ip>:<port>`; port 0 for any.
        address: Target,
        /// Passed to the machine after name, address and parent.
        args: Vec<String>,
    },
    /// `stop <port>`: stop the machine this server started on that port.
    Stop {
        /// The machine's port.
        port: u16,
    },
    /// `register <name> <pid>`: a machine says where it listens.
    Register {
        /// Its name.
        name: String,
        /// Its process id.
        pid: u32,
    },
    /// `unregister`: a machine is exiting in order.
    Unregister,
    /// `list`: which machines are running.
    List,
}

/// Where a machine should listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `:<port>` on the server's own IP.
    Port(u16),
    /// An explicit `<ip>:<port>`.
    Address(Address),
}

/// What is wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The message was empty.
    #[error("empty request; expected start, stop, register, unregister or list")]
    Empty,
    /// Its first word is not a request.
    #[error("unknown request `{0}`; expected start, stop, register, unregister or list")]
    Unknown(String),
    /// A word is missing.
    #[error("`{request}` needs {argument}")]
    Missing {
        /// The request.
        request: &'static str,
        /// What it needs.
        argument: &'static str,
    },
    /// A port that is not one.
    #[error("`{request}`: `{text}` is not a port (0-65535)")]
    BadPort {
        /// The request.
        request: &'static str,
        /// The word.
        text: String,
    },
    /// A pid that is not one.
    #[error("`register`: `{0}` is not a process id")]
    BadPid(String),
    /// A machine name that is not one.
    #[error("`start`: {0}")]
    BadName(#[from] NameError),
    /// An address that is not one.
    #[error("`start`: {0}")]
    BadAddress(#[from] AddressError),
    /// Extra words.
    #[error("`{request}` takes no more arguments, got `{extra}`")]
    Extra {
        /// The request.
        request: &'static str,
        /// The words left over.
        extra: String,
    },
}

impl Request {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Request, RequestError> {
        let mut words = text.split_ascii_whitespace();
        let command = words.next().ok_or(RequestError::Empty)?;
        let request = match command {
            "start" => {
                let name = words.next().ok_or(RequestError::Missing {
                    request: "start",
                    argument: "a machine name (package/executable)",
                })?;
                let name: MachineName = name.parse()?;
                let address = match words.next() {
                    None => Target::Port(0),
                    Some(text) => match text.strip_prefix(':') {
                        Some(port) => {
                            Target::Port(port.parse().map_err(|_| RequestError::BadPort {
                                request: "start",
                                text: text.to_owned(),
                            })?)
                        }
                        None => Target::Address(text.parse()?),
                    },
                };
                let args = words.map(str::to_owned).collect();
                return Ok(Request::Start {
                    name,
                    address,
                    args,
                });
            }
            "stop" => {
                let text = words.next().ok_or(RequestError::Missing {
                    request: "stop",
                    argument: "a port",
                })?;
                let port =
                    text.trim_start_matches(':')
                        .parse()
                        .map_err(|_| RequestError::BadPort {
                            request: "stop",
                            text: text.to_owned(),
                        })?;
                Request::Stop { port }
            }
            "register" => {
                let name = words.next().ok_or(RequestError::Missing {
                    request: "register",
                    argument: "a name and a pid",
                })?;
                let pid = words.next().ok_or(RequestError::Missing {
                    request: "register",
                    argument: "a pid",
                })?;
                Request::Register {
                    name: name.to_owned(),
                    pid: pid
                        .parse()
                        .map_err(|_| RequestError::BadPid(pid.to_owned()))?,
                }
            }
            "unregister" => Request::Unregister,
            "list" => Request::List,
            other => return Err(RequestError::Unknown(other.to_owned())),
        };
        let extra: Vec<&str> = words.collect();
        if extra.is_empty() {
            Ok(request)
        } else {
            Err(RequestError::Extra {
                request: request.command(),
                extra: extra.join(" "),
            })
        }
    }

    fn command(&self) -> &'static str {
        match self {
            Request::Start { .. } => "start",
            Request::Stop { .. } => "stop",
            Request::Register { .. } => "register",
            Request::Unregister => "unregister",
            Request::List => "list",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_with_port_and_args() {
        let r = Request::parse("start family/Child#Bob :7000 a b").unwrap();
        assert_eq!(
            r,
            Request::Start {
                name: "family/Child#Bob".parse().unwrap(),
                address: Target::Port(7000),
                args: vec!["a".into(), "b".into()],
            }
        );
        let r = Request::parse("start echo/Echo").unwrap();
        assert!(matches!(
            r,
            Request::Start {
                address: Target::Port(0),
                ..
            }
        ));
    }

    #[test]
    fn names_outside_the_directory_are_refused() {
        for bad in [
            "start ../../bin/sh",
            "start /bin/sh",
            "start sh",
            "start a/../../b",
        ] {
            assert!(
                matches!(Request::parse(bad), Err(RequestError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert_eq!(Request::parse("").unwrap_err(), RequestError::Empty);
        assert_eq!(
            Request::parse("launch x/y").unwrap_err().to_string(),
            "unknown request `launch`; expected start, stop, register, unregister or list"
        );
        assert_eq!(
            Request::parse("stop").unwrap_err().to_string(),
            "`stop` needs a port"
        );
        assert_eq!(
            Request::parse("stop http").unwrap_err().to_string(),
            "`stop`: `http` is not a port (0-65535)"
        );
        assert_eq!(
            Request::parse("start a/b :99999").unwrap_err().to_string(),
            "`start`: `:99999` is not a port (0-65535)"
        );
        assert!(Request::parse("register x").is_err());
        assert!(Request::parse("register x -1").is_err());
        assert_eq!(
            Request::parse("list everything").unwrap_err().to_string(),
            "`list` takes no more arguments, got `everything`"
        );
    }

    #[test]
    fn stop_accepts_colon_port() {
        assert_eq!(
            Request::parse("stop :80").unwrap(),
            Request::Stop { port: 80 }
        );
    }
}
