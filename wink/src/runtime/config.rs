//! Every timing of the runtime in one place, with the seed's defaults, and
//! their environment variables (`docs/configuration.md`).

use std::time::Duration;

use crate::transport::TransportConfig;

/// How a machine (or the server, or the CLI) times its messages and its
/// lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Retransmission, retries and flow control.
    pub transport: TransportConfig,
    /// How often a machine sends `pulsed` to its parent. Seed: 10 s.
    pub pulse: Duration,
    /// How long a parent waits without hearing from a child before it
    /// reports the child `errored … heartbeat timeout` and `exited`. Seed:
    /// 60 s.
    pub heartbeat_timeout: Duration,
    /// How long an exiting machine waits for its last messages (`exited`,
    /// `unregister`, stop requests for its children) to be acknowledged.
    pub linger: Duration,
    /// Whether every message sent and received is logged (seed: yes).
    pub log_messages: bool,
    /// The cluster's key file, if it has one (its keys are in
    /// `transport.keys`): read again on SIGHUP.
    pub key_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            transport: TransportConfig::default(),
            pulse: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(60),
            linger: Duration::from_secs(2),
            log_messages: true,
            key_file: None,
        }
    }
}

/// The largest `WINK_WINDOW` accepted.
pub const MAX_WINDOW: usize = 65536;

/// An environment variable that does not hold what it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value:?}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl Config {
    /// Checks what a cluster key asks of the timings: a peer is remembered
    /// longer than a replay of its datagrams could be accepted (twice
    /// `WINK_MAX_SKEW_MS`, and a second), or its late replay would be taken
    /// for a new message.
    pub fn check_for_keys(&self) -> Result<(), ConfigError> {
        if self.transport.peer_idle <= self.transport.replay_window() {
            return Err(ConfigError {
                name: "WINK_PEER_IDLE_MS",
                value: self.transport.peer_idle.as_millis().to_string(),
                problem: "with a cluster key, must be longer than 2 x WINK_MAX_SKEW_MS + 1000",
            });
        }
        Ok(())
    }

    /// The timings of a machine's supervision core.
    pub fn node(&self) -> crate::node::NodeConfig {
        crate::node::NodeConfig {
            pulse: self.pulse,
            heartbeat_timeout: self.heartbeat_timeout,
            log_messages: self.log_messages,
        }
    }

    /// The defaults, overridden by any of these environment variables
    /// (durations in milliseconds): `WINK_PULSE_MS`,
    /// `WINK_HEARTBEAT_TIMEOUT_MS`, `WINK_LINGER_MS`, `WINK_RTO_INITIAL_MS`,
    /// `WINK_RTO_MIN_MS`, `WINK_RTO_MAX_MS`, `WINK_RETRIES`, `WINK_WINDOW`,
    /// `WINK_PEER_IDLE_MS`, `WINK_MAX_SKEW_MS`, `WINK_ACK_DELAY_US` (microseconds), `WINK_DATAGRAM_SIZE`,
    /// `WINK_MAX_PEERS`, `WINK_MAX_BUFFERED_BYTES`,
    /// `WINK_MAX_BUFFERED_PER_PEER_BYTES`, `WINK_LOG_MESSAGES` (`0` or `1`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        let millis = |name: &'static str, into: &mut Duration| -> Result<(), ConfigError> {
            if let Some(value) = lookup(name) {
                let ms: u64 = value.trim().parse().map_err(|_| ConfigError {
                    name,
                    value: value.clone(),
                    problem: "expected a whole number of milliseconds",
                })?;
                *into = Duration::from_millis(ms);
            }
            Ok(())
        };
        millis("WINK_PULSE_MS", &mut config.pulse)?;
        millis("WINK_HEARTBEAT_TIMEOUT_MS", &mut config.heartbeat_timeout)?;
        millis("WINK_LINGER_MS", &mut config.linger)?;
        millis("WINK_RTO_INITIAL_MS", &mut config.transport.initial_rto)?;
        millis("WINK_RTO_MIN_MS", &mut config.transport.min_rto)?;
        millis("WINK_RTO_MAX_MS", &mut config.transport.max_rto)?;
        millis("WINK_PEER_IDLE_MS", &mut config.transport.peer_idle)?;
        millis("WINK_MAX_SKEW_MS", &mut config.transport.max_skew)?;
        let count = |name: &'static str| -> Result<Option<usize>, ConfigError> {
            lookup(name)
                .map(|value| {
                    value.trim().parse().map_err(|_| ConfigError {
                        name,
                        value: value.clone(),
                        problem: "expected a whole number",
                    })
                })
                .transpose()
        };
        if let Some(retries) = count("WINK_RETRIES")? {
            config.transport.retries = u32::try_from(retries).map_err(|_| ConfigError {
                name: "WINK_RETRIES",
                value: retries.to_string(),
                problem: "too many retries (at most 4294967295)",
            })?;
        }
        if let Some(window) = count("WINK_WINDOW")? {
            if !(1..=MAX_WINDOW).contains(&window) {
                return Err(ConfigError {
                    name: "WINK_WINDOW",
                    value: window.to_string(),
                    problem: "the window holds 1 to 65536 messages",
                });
            }
            config.transport.window = window;
            // A receiver must buffer at least what a sender may have in
            // flight, or it drops (unacked) what it cannot hold.
            config.transport.receive_window = config.transport.receive_window.max(window);
        }
        if let Some(us) = count("WINK_ACK_DELAY_US")? {
            config.transport.ack_delay = Duration::from_micros(us as u64);
        }
        if let Some(size) = count("WINK_DATAGRAM_SIZE")? {
            if !(64..=crate::wire::MAX_DATAGRAM).contains(&size) {
                return Err(ConfigError {
                    name: "WINK_DATAGRAM_SIZE",
                    value: size.to_string(),
                    problem: "a datagram holds 64 to 65507 bytes",
                });
            }
            config.transport.datagram_size = size;
        }
        if let Some(peers) = count("WINK_MAX_PEERS")? {
            if peers < 2 {
                return Err(ConfigError {
                    name: "WINK_MAX_PEERS",
                    value: peers.to_string(),
                    problem: "at least 2 peers: a machine talks to its parent and its server",
                });
            }
            config.transport.max_peers = peers;
        }
        if let Some(bytes) = count("WINK_MAX_BUFFERED_BYTES")? {
            config.transport.max_buffered = bytes;
        }
        if let Some(bytes) = count("WINK_MAX_BUFFERED_PER_PEER_BYTES")? {
            config.transport.max_buffered_per_peer = bytes;
        }
        if let Some(value) = lookup("WINK_LOG_MESSAGES") {
            config.log_messages = match value.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(ConfigError {
                        name: "WINK_LOG_MESSAGES",
                        value,
                        problem: "expected 0 or 1",
                    })
                }
            };
        }
        // Zero would make the loop spin (a pulse or heartbeat check due at
        // every turn).
        for (name, value) in [
            ("WINK_PULSE_MS", config.pulse),
            ("WINK_HEARTBEAT_TIMEOUT_MS", config.heartbeat_timeout),
            ("WINK_RTO_MIN_MS", config.transport.min_rto),
        ] {
            if value.is_zero() {
                return Err(ConfigError {
                    name,
                    value: "0".to_owned(),
                    problem: "must be at least 1 ms",
                });
            }
        }
        if config.heartbeat_timeout <= config.pulse {
            return Err(ConfigError {
                name: "WINK_HEARTBEAT_TIMEOUT_MS",
                value: config.heartbeat_timeout.as_millis().to_string(),
                problem: "must be longer than the pulse interval, or every child times out",
            });
        }
        if config.transport.max_skew < Duration::from_secs(1) {
            return Err(ConfigError {
                name: "WINK_MAX_SKEW_MS",
                value: config.transport.max_skew.as_millis().to_string(),
                problem: "at least 1000: a sealed datagram's clock is in whole seconds",
            });
        }
        if config.transport.min_rto > config.transport.max_rto {
            return Err(ConfigError {
                name: "WINK_RTO_MIN_MS",
                value: config.transport.min_rto.as_millis().to_string(),
                problem: "the minimum retransmission timeout is above the maximum",
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_are_the_seeds() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(config.pulse, Duration::from_secs(10));
        assert_eq!(config.heartbeat_timeout, Duration::from_secs(60));
        assert_eq!(config.transport.max_rto, Duration::from_secs(10));
        assert_eq!(config.transport.retries, 3);
    }

    #[test]
    fn environment_overrides_defaults() {
        let config = Config::from_lookup(lookup(&[
            ("WINK_PULSE_MS", "100"),
            ("WINK_HEARTBEAT_TIMEOUT_MS", "500"),
            ("WINK_RETRIES", "7"),
            ("WINK_LOG_MESSAGES", "0"),
        ]))
        .unwrap();
        assert_eq!(config.pulse, Duration::from_millis(100));
        assert_eq!(config.heartbeat_timeout, Duration::from_millis(500));
        assert_eq!(config.transport.retries, 7);
        assert!(!config.log_messages);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_lookup(lookup(&[("WINK_PULSE_MS", "soon")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable WINK_PULSE_MS=\"soon\": expected a whole number of milliseconds"
        );
        assert!(Config::from_lookup(lookup(&[("WINK_WINDOW", "0")])).is_err());
        assert!(Config::from_lookup(lookup(&[("WINK_WINDOW", "1000000")])).is_err());
        assert!(Config::from_lookup(lookup(&[("WINK_RETRIES", "4294967296")])).is_err());
        let err = Config::from_lookup(lookup(&[("WINK_MAX_PEERS", "1")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable WINK_MAX_PEERS=\"1\": at least 2"),
            "{err}"
        );
        assert!(Config::from_lookup(lookup(&[("WINK_DATAGRAM_SIZE", "10")])).is_err());
    }

    #[test]
    fn a_key_asks_peers_to_be_remembered_longer_than_a_replay_is_accepted() {
        let err = Config::from_lookup(lookup(&[("WINK_MAX_SKEW_MS", "999")])).unwrap_err();
        assert_eq!(err.name, "WINK_MAX_SKEW_MS");
        let config = Config::from_lookup(lookup(&[
            ("WINK_MAX_SKEW_MS", "30000"),
            ("WINK_PEER_IDLE_MS", "61000"),
        ]))
        .unwrap();
        assert_eq!(
            config.check_for_keys().unwrap_err().name,
            "WINK_PEER_IDLE_MS"
        );
        assert!(Config::from_lookup(|_| None)
            .unwrap()
            .check_for_keys()
            .is_ok());
    }

    #[test]
    fn zero_or_inverted_timings_are_refused() {
        for (name, value) in [
            ("WINK_PULSE_MS", "0"),
            ("WINK_HEARTBEAT_TIMEOUT_MS", "0"),
            ("WINK_RTO_MIN_MS", "0"),
            ("WINK_HEARTBEAT_TIMEOUT_MS", "5000"),
        ] {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vec![(name, value)].into_boxed_slice());
            let err = Config::from_lookup(lookup(vars)).unwrap_err();
            assert_eq!(err.name, name, "{err}");
        }
    }
}
