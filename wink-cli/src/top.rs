//! `wink top [SERVER…]`: a live view of the machines of one or several
//! servers, refreshed every second (`--interval`): each machine's state,
//! messages per second in and out, retransmissions, give-ups, memory and
//! CPU, sorted by a key the user picks. `q` quits.
//!
//! Each refresh lists the servers and asks every machine `status` (as
//! `wink tree` does); rates are the counters' change since the refresh
//! before. What is drawn is computed by [`screen`], a plain function of
//! the samples, the sort key and the terminal's size; the loop only moves
//! it to the terminal (raw mode, the alternate screen, restored on every
//! way out) and reads keys.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, terminal};
use wink::control::{RequestId, Row, StatusReport};
use wink::Address;

use crate::client::{Client, Failure};
use crate::tree::{ask_status, list, uptime};

/// Watch the machines of one or several servers live.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The servers: addresses, or IPs (port 42000) [default: --server].
    #[arg(value_parser = crate::list::parse_host)]
    pub servers: Vec<Address>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
}

/// What the rows are sorted by; a key picks each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// `n`: by name, then address.
    Name,
    /// `i`: messages in per second, most first.
    In,
    /// `o`: messages out per second, most first.
    Out,
    /// `r`: retransmissions, most first.
    Retransmits,
    /// `m`: resident memory, most first.
    Memory,
    /// `c`: CPU, most first.
    Cpu,
}

impl Sort {
    fn of_key(c: char) -> Option<Sort> {
        Some(match c {
            'n' => Sort::Name,
            'i' => Sort::In,
            'o' => Sort::Out,
            'r' => Sort::Retransmits,
            'm' => Sort::Memory,
            'c' => Sort::Cpu,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::In => "in/s",
            Sort::Out => "out/s",
            Sort::Retransmits => "retransmits",
            Sort::Memory => "memory",
            Sort::Cpu => "cpu",
        }
    }
}

/// One machine at one refresh, with its rates since the refresh before.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Where it listens.
    pub address: Address,
    /// Its name.
    pub name: String,
    /// Its state lineage, or `?` if it did not answer.
    pub state: String,
    /// Its uptime, as `wink tree` writes it.
    pub uptime: String,
    /// Messages in and out per second.
    pub in_rate: f64,
    /// Messages out per second.
    pub out_rate: f64,
    /// Retransmissions and give-ups, all told.
    pub retransmitted: u64,
    /// Messages given up on, all told.
    pub gave_up: u64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// CPU use since the refresh before, percent of one core.
    pub cpu: f64,
}

/// Each machine's line from this refresh's `reports`, with rates against
/// the `before` ones `dt` earlier.
pub fn lines(
    rows: &[Row],
    reports: &HashMap<Address, StatusReport>,
    before: &HashMap<Address, StatusReport>,
    dt: Duration,
) -> Vec<Line> {
    let secs = dt.as_secs_f64().max(1e-3);
    rows.iter()
        .filter_map(|row| {
            let address = row.address?;
            let now = reports.get(&address);
            let then = before.get(&address);
            let rate = |f: fn(&StatusReport) -> u64| match (now, then) {
                (Some(n), Some(t)) => f(n).saturating_sub(f(t)) as f64 / secs,
                _ => 0.0,
            };
            Some(Line {
                address,
                name: row.name.to_string(),
                state: now.map_or_else(|| "?".to_owned(), |r| r.state.clone()),
                uptime: now.map_or_else(|| "-".to_owned(), |r| uptime(r.uptime_ms)),
                in_rate: rate(|r| r.received),
                out_rate: rate(|r| r.sent),
                retransmitted: now.map_or(0, |r| r.retransmitted),
                gave_up: now.map_or(0, |r| r.gave_up),
                rss: now.map_or(0, |r| r.rss_bytes),
                cpu: rate(|r| r.cpu_ms) / 10.0,
            })
        })
        .collect()
}

/// The screen for `lines` sorted by `sort`, `width` columns by `height`
/// rows: a title, a header, and as many machines as fit (the rest
/// counted on the last line).
pub fn screen(
    lines: &mut [Line],
    servers: usize,
    sort: Sort,
    width: usize,
    height: usize,
) -> Vec<String> {
    let most_first = |a: f64, b: f64| b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal);
    lines.sort_by(|a, b| {
        let by = match sort {
            Sort::Name => a.name.cmp(&b.name),
            Sort::In => most_first(a.in_rate, b.in_rate),
            Sort::Out => most_first(a.out_rate, b.out_rate),
            Sort::Retransmits => b.retransmitted.cmp(&a.retransmitted),
            Sort::Memory => b.rss.cmp(&a.rss),
            Sort::Cpu => most_first(a.cpu, b.cpu),
        };
        by.then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.address.cmp(&b.address))
    });
    let mut out = vec![
        format!(
            "wink top: {} machines on {servers} servers, sorted by {} (n i o r m c sort, q quits)",
            lines.len(),
            sort.word()
        ),
        format!(
            "{:<22} {:<24} {:<20} {:>7} {:>9} {:>9} {:>6} {:>6} {:>8} {:>6}",
            "ADDRESS", "NAME", "STATE", "UP", "IN/S", "OUT/S", "RETX", "GAVEUP", "RSS", "CPU%"
        ),
    ];
    let room = height.saturating_sub(3).max(1);
    for line in lines.iter().take(room) {
        out.push(format!(
            "{:<22} {:<24} {:<20} {:>7} {:>9.1} {:>9.1} {:>6} {:>6} {:>7.1}M {:>6.1}",
            line.address.to_string(),
            clip(&line.name, 24),
            clip(&line.state, 20),
            line.uptime,
            line.in_rate,
            line.out_rate,
            line.retransmitted,
            line.gave_up,
            line.rss as f64 / 1e6,
            line.cpu
        ));
    }
    if lines.len() > room {
        out.push(format!("… and {} more", lines.len() - room));
    }
    out.iter_mut().for_each(|l| *l = clip(l, width.max(1)));
    out
}

/// `text` cut to `width` characters, with `…` if it was longer.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The terminal in raw mode on the alternate screen, put back as it was
/// however `wink top` ends.
struct Terminal;

impl Terminal {
    fn enter() -> Result<Self, Failure> {
        terminal::enable_raw_mode().map_err(|e| Failure::new(format!("the terminal: {e}")))?;
        let mut out = std::io::stdout();
        execute!(out, terminal::EnterAlternateScreen, cursor::Hide)
            .map_err(|e| Failure::new(format!("the terminal: {e}")))?;
        Ok(Terminal)
    }

    fn draw(&self, lines: &[String]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        queue!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        for (i, line) in lines.iter().enumerate() {
            queue!(out, cursor::MoveTo(0, u16::try_from(i).unwrap_or(u16::MAX)))?;
            write!(out, "{line}")?;
        }
        out.flush()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// `wink top`: refreshes until `q` (or Ctrl-C).
pub fn run(client: &mut Client, server: Address, args: Args) -> Result<(), Failure> {
    let servers = if args.servers.is_empty() {
        vec![server]
    } else {
        args.servers
    };
    if !(args.interval.is_finite() && (0.1..=3600.0).contains(&args.interval)) {
        return Err(Failure::new("--interval: from 0.1 to 3600 seconds"));
    }
    let interval = Duration::from_secs_f64(args.interval);
    let terminal = Terminal::enter()?;
    let mut sort = Sort::Name;
    let mut before: HashMap<Address, StatusReport> = HashMap::new();
    let mut sampled = Instant::now();
    let mut next_id = 1u64;
    loop {
        let mut rows = Vec::new();
        for &server in &servers {
            next_id += 1;
            rows.extend(list(client, server, RequestId(next_id))?);
        }
        let addresses: Vec<Address> = rows.iter().filter_map(|r| r.address).collect();
        let wait = interval.min(client.timeout());
        let reports = ask_status(client, &addresses, next_id + 1, wait)?;
        next_id += addresses.len() as u64 + 1;
        let now = Instant::now();
        let mut shown = lines(&rows, &reports, &before, now - sampled);
        before = reports;
        sampled = now;
        // Redrawn on every key and at every refresh.
        let until = now + interval;
        loop {
            let (width, height) = terminal::size().unwrap_or((120, 40));
            let text = screen(&mut shown, servers.len(), sort, width.into(), height.into());
            terminal
                .draw(&text)
                .map_err(|e| Failure::new(format!("the terminal: {e}")))?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left).unwrap_or(false) {
                break;
            }
            if let Ok(Event::Key(key)) = event::read() {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Char(c) => {
                        if let Some(s) = Sort::of_key(c) {
                            sort = s;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, port: u16, in_rate: f64, rss: u64) -> Line {
        Line {
            address: format!("127.0.0.1:{port}").parse().unwrap(),
            name: name.to_owned(),
            state: "Running".to_owned(),
            uptime: "3s".to_owned(),
            in_rate,
            out_rate: 0.0,
            retransmitted: 0,
            gave_up: 0,
            rss,
            cpu: 0.0,
        }
    }

    #[test]
    fn the_screen_sorts_by_the_key_and_counts_what_does_not_fit() {
        let mut lines: Vec<Line> = (0..10)
            .map(|i| {
                line(
                    &format!("a/M#{i}"),
                    7000 + i,
                    f64::from(i),
                    1_000_000 * u64::from(10 - i),
                )
            })
            .collect();
        let text = screen(&mut lines, 1, Sort::In, 200, 8);
        assert!(
            text[0].contains("10 machines on 1 servers, sorted by in/s"),
            "{text:?}"
        );
        assert!(text[2].starts_with("127.0.0.1:7009 "), "{text:?}");
        assert_eq!(text.len(), 2 + 5 + 1);
        assert_eq!(text[7], "… and 5 more");
        let text = screen(&mut lines, 1, Sort::Memory, 200, 40);
        assert!(text[2].starts_with("127.0.0.1:7000 "), "{text:?}");
        let text = screen(&mut lines, 1, Sort::Name, 30, 40);
        assert!(text.iter().all(|l| l.chars().count() <= 30), "{text:?}");
    }

    #[test]
    fn rates_are_the_counters_change_per_second() {
        let row = Row {
            address: Some("127.0.0.1:7000".parse().unwrap()),
            pid: 1,
            name: "a/M".parse().unwrap(),
            parent: "127.0.0.1:42000".parse().unwrap(),
            uptime: 0,
        };
        let report = |received: u64, cpu_ms: u64| StatusReport {
            id: RequestId(1),
            name: "a/M".parse().unwrap(),
            state: "Running".to_owned(),
            parent: "127.0.0.1:42000".parse().unwrap(),
            uptime_ms: 5_000,
            children: 0,
            restarts: 0,
            received,
            sent: 0,
            retransmitted: 0,
            duplicates: 0,
            gave_up: 0,
            rss_bytes: 0,
            cpu_ms,
        };
        let address = row.address.unwrap();
        let before = HashMap::from([(address, report(100, 1_000))]);
        let now = HashMap::from([(address, report(300, 1_500))]);
        let lines = lines(&[row], &now, &before, Duration::from_secs(2));
        assert_eq!(lines[0].in_rate, 100.0);
        assert_eq!(lines[0].cpu, 25.0);
    }
}
