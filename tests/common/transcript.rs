//! Runs a parsed script against one server and records what each step got
//! back, then compares two such transcripts.
//!
//! A surprise (a reply that never comes, a connection that closes early) is
//! recorded rather than raised, so that one run always yields a full
//! transcript and the comparison can show where the two servers part ways.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::conn::{show, Conn};
use super::frame::{header_lines, token, trim_eol};
use super::normalise::normalise;
use super::script::{Expect, Line, Script, Step, Template, Then};

/// The window in which "nothing arrives" is checked. memcached answers a
/// request on loopback in well under a millisecond.
const SILENCE_MS: u64 = 300;

/// The longest an `@until` waits: a 1-second TTL on a clock that ticks once
/// a second takes at most about 3 s to show.
const UNTIL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an `@until` request is repeated.
const UNTIL_INTERVAL: Duration = Duration::from_millis(50);

/// What one step of a script got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The script line number.
    pub line: usize,
    /// The script line as written.
    pub text: String,
    /// What happened, in order.
    pub events: Vec<Event>,
}

/// One observation during a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete reply, normalised.
    Reply(Vec<u8>),
    /// The connection closed as expected.
    Closed,
    /// Nothing arrived, as expected.
    Silent,
    /// The expectation failed; what happened instead.
    Failed(String),
    /// Not run: the connection was lost at an earlier step.
    Skipped,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Reply(bytes) => f.write_str(&show(bytes)),
            Event::Closed => f.write_str("<closed>"),
            Event::Silent => f.write_str("<silent>"),
            Event::Failed(why) => write!(f, "<{why}>"),
            Event::Skipped => f.write_str("<skipped: connection lost earlier>"),
        }
    }
}

/// What became of a connection after an exchange.
enum Fate {
    Usable,
    /// Closed as the script expected: the next use opens a new one.
    Closed,
    /// In an unknown state: later steps on it are skipped.
    Lost,
}

/// Runs `script` against the server at `addr`.
pub fn run(script: &Script, addr: SocketAddr) -> Vec<Entry> {
    let mut runner = Runner {
        addr,
        conns: HashMap::new(),
        lost: HashSet::new(),
        current: 1,
        held: Vec::new(),
        last_cas: 0,
    };
    script.lines.iter().filter_map(|l| runner.step(l)).collect()
}

/// The state of one run: its connections and the last CAS unique seen.
struct Runner {
    addr: SocketAddr,
    conns: HashMap<u32, Conn>,
    lost: HashSet<u32>,
    current: u32,
    held: Vec<TcpStream>,
    last_cas: u64,
}

impl Runner {
    /// Runs one line; only lines that read something produce an entry.
    fn step(&mut self, line: &Line) -> Option<Entry> {
        let events = match &line.step {
            Step::Conn(id) => {
                self.current = *id;
                return None;
            }
            Step::Hold(n) => {
                self.hold(*n);
                return None;
            }
            Step::Exchange { request, expect } => self.exchange(request, *expect),
            Step::Until { request, reply } => self.until(request, reply),
            Step::Stat(name) => vec![self.stat(name)],
        };
        Some(Entry {
            line: line.number,
            text: line.text.clone(),
            events,
        })
    }

    fn exchange(&mut self, request: &Template, expect: Expect) -> Vec<Event> {
        let bytes = request.render(self.last_cas);
        let conn = match self.current_conn() {
            Ok(conn) => conn,
            Err(event) => return vec![event],
        };
        let (events, replies, fate) = exchange_on(conn, &bytes, expect);
        if let Some(cas) = replies.iter().rev().find_map(|r| last_cas_in(r)) {
            self.last_cas = cas;
        }
        self.settle(fate);
        events
    }

    /// Repeats a one-reply request until it gets `want`.
    fn until(&mut self, request: &Template, want: &[u8]) -> Vec<Event> {
        let want = normalise(want);
        let deadline = Instant::now() + UNTIL_TIMEOUT;
        loop {
            let bytes = request.render(self.last_cas);
            let (events, _, fate) = match self.current_conn() {
                Ok(conn) => exchange_on(conn, &bytes, ONE_REPLY),
                Err(event) => return vec![event],
            };
            match events.first() {
                Some(Event::Reply(got)) if *got == want => return events,
                Some(Event::Reply(got)) if Instant::now() >= deadline => {
                    return vec![Event::Failed(format!(
                        "still {} after {UNTIL_TIMEOUT:?}",
                        show(got)
                    ))];
                }
                Some(Event::Reply(_)) => std::thread::sleep(UNTIL_INTERVAL),
                _ => {
                    self.settle(fate);
                    return events;
                }
            }
        }
    }

    /// The `STAT NAME value` line of a fresh `stats` request.
    fn stat(&mut self, name: &str) -> Event {
        let mut conn = match Conn::try_connect(self.addr) {
            Ok(conn) => conn,
            Err(e) => return Event::Failed(format!("connect: {e}")),
        };
        let (events, replies, _) = exchange_on(&mut conn, b"stats\r\n", ONE_REPLY);
        let Some(reply) = replies.first() else {
            return events.into_iter().next().unwrap_or(Event::Skipped);
        };
        let line = header_lines(reply)
            .into_iter()
            .find(|l| token(l, 0) == Some(b"STAT") && token(l, 1) == Some(name.as_bytes()));
        match line {
            Some(line) => Event::Reply(trim_eol(line).to_vec()),
            None => Event::Failed(format!("no STAT {name}")),
        }
    }

    fn hold(&mut self, n: usize) {
        let opened = (0..n).filter_map(|_| TcpStream::connect(self.addr).ok());
        self.held.extend(opened);
    }

    /// The current connection, opened on first use.
    fn current_conn(&mut self) -> Result<&mut Conn, Event> {
        if self.lost.contains(&self.current) {
            return Err(Event::Skipped);
        }
        if !self.conns.contains_key(&self.current) {
            let conn =
                Conn::try_connect(self.addr).map_err(|e| Event::Failed(format!("connect: {e}")))?;
            self.conns.insert(self.current, conn);
        }
        Ok(self.conns.get_mut(&self.current).expect("inserted above"))
    }

    fn settle(&mut self, fate: Fate) {
        match fate {
            Fate::Usable => {}
            Fate::Closed => {
                self.conns.remove(&self.current);
            }
            Fate::Lost => {
                self.conns.remove(&self.current);
                self.lost.insert(self.current);
            }
        }
    }
}

const ONE_REPLY: Expect = Expect {
    replies: 1,
    then: Then::Open,
};

/// Sends `bytes` (if any), reads the expected replies and checks the end
/// state. Returns the events, the raw replies and the connection's fate.
fn exchange_on(conn: &mut Conn, bytes: &[u8], expect: Expect) -> (Vec<Event>, Vec<Vec<u8>>, Fate) {
    let mut events = Vec::new();
    let mut replies = Vec::new();
    if let Err(e) = send_if_any(conn, bytes) {
        return (
            vec![Event::Failed(format!("send: {e}"))],
            replies,
            Fate::Lost,
        );
    }
    for _ in 0..expect.replies {
        match conn.try_read_reply() {
            Ok(reply) => {
                events.push(Event::Reply(normalise(&reply)));
                replies.push(reply);
            }
            Err(e) => {
                events.push(Event::Failed(e.to_string()));
                return (events, replies, Fate::Lost);
            }
        }
    }
    let (event, fate) = check_end(conn, expect.then);
    events.extend(event);
    (events, replies, fate)
}

fn send_if_any(conn: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
    match bytes {
        [] => Ok(()),
        _ => conn.try_send(bytes),
    }
}

fn check_end(conn: &mut Conn, then: Then) -> (Option<Event>, Fate) {
    match then {
        Then::Open => (None, Fate::Usable),
        Then::Closed => match conn.try_expect_closed() {
            Ok(()) => (Some(Event::Closed), Fate::Closed),
            Err(got) => (
                Some(Event::Failed(format!("not closed: {}", show(&got)))),
                Fate::Lost,
            ),
        },
        Then::Silent => match conn.try_expect_silence(SILENCE_MS) {
            Ok(()) => (Some(Event::Silent), Fate::Usable),
            Err(got) => (
                Some(Event::Failed(format!("not silent: {got}"))),
                Fate::Lost,
            ),
        },
    }
}

/// The CAS unique of the last `VALUE k f n cas` line in a raw reply.
fn last_cas_in(reply: &[u8]) -> Option<u64> {
    header_lines(reply)
        .into_iter()
        .rev()
        .filter(|l| token(l, 0) == Some(b"VALUE"))
        .find_map(|l| std::str::from_utf8(token(l, 4)?).ok()?.parse().ok())
}

/// Compares the transcript of the server under test with the reference's.
///
/// # Errors
///
/// A report of the first few differing steps, showing both sides.
pub fn compare(
    script: &str,
    subject: (&str, &[Entry]),
    reference: (&str, &[Entry]),
) -> Result<(), String> {
    let differing: Vec<(&Entry, &Entry)> = subject
        .1
        .iter()
        .zip(reference.1)
        .filter(|(s, r)| s.events != r.events)
        .collect();
    if differing.is_empty() && subject.1.len() == reference.1.len() {
        return Ok(());
    }
    let mut report = format!(
        "script `{script}`: {} differs from {} at {} step(s)\n",
        subject.0,
        reference.0,
        differing.len()
    );
    for (s, r) in differing.iter().take(5) {
        let same = first_difference(&s.events, &r.events);
        report += &format!("line {}: {}\n", s.line, s.text);
        if same > 0 {
            report += &format!("  (the first {same} event(s) agree)\n");
        }
        report += &format!("  {:>10}: {}\n", subject.0, describe(&s.events[same..]));
        report += &format!("  {:>10}: {}\n", reference.0, describe(&r.events[same..]));
    }
    Err(report)
}

/// How many leading events two lists share.
fn first_difference(a: &[Event], b: &[Event]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The first few events of a list, for a report a person can read.
fn describe(events: &[Event]) -> String {
    const SHOWN: usize = 3;
    let mut shown: Vec<String> = events.iter().take(SHOWN).map(Event::to_string).collect();
    if events.len() > SHOWN {
        shown.push(format!("... ({} more)", events.len() - SHOWN));
    }
    match shown.is_empty() {
        true => "<nothing more>".to_string(),
        false => shown.join(" + "),
    }
}
