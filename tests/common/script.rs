//! Request scripts: a plain-text list of requests, each with what to read
//! back, that can be run against any server and turned into a transcript.
//!
//! This module parses scripts and runs them ([`Script::run`]); comparing
//! transcripts lives in [`super::transcript`]. The format is documented at
//! the top of `tests/differential.rs`, which is where the scripts are used.

use std::net::SocketAddr;
use std::path::Path;

pub use super::template::Template;
pub use super::transcript::{compare, Entry, Event};

/// Server flags every script starts from, unless its `#!` line names the
/// same flag: one worker thread makes the reference deterministic.
const DEFAULT_FLAGS: [(&str, &str); 2] = [("-t", "1"), ("-m", "64")];

/// A parsed script.
#[derive(Debug, Clone)]
pub struct Script {
    /// The file name without `.txt`, for messages.
    pub name: String,
    /// The flags from `#!` lines, in order.
    pub flags: Vec<String>,
    /// The steps, with where each came from.
    pub lines: Vec<Line>,
}

/// One step and the script line that wrote it.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in the script file.
    pub number: usize,
    /// The line as written, for failure messages.
    pub text: String,
    /// What the line asks for.
    pub step: Step,
}

/// What one script line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `REQUEST => EXPECT`: send, then read replies and check the end state.
    Exchange { request: Template, expect: Expect },
    /// `@until REQUEST == REPLY`: repeat a one-reply request until it gets
    /// this reply, to wait for a time-driven change such as an expiry.
    Until { request: Template, reply: Vec<u8> },
    /// `@conn N`: switch to connection N, opening it on first use.
    Conn(u32),
    /// `@hold N`: open N more connections and leave them idle.
    Hold(usize),
    /// `@stat NAME`: the value of one `stats` field, compared exactly.
    Stat(String),
}

/// What to read after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// Complete replies to read.
    pub replies: usize,
    /// What must hold once they are read.
    pub then: Then,
}

/// The state a connection must be in after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Nothing is checked.
    Open,
    /// The server closes the connection without sending more.
    Closed,
    /// Nothing more arrives within a short window.
    Silent,
}

impl Script {
    /// Reads and parses a script file.
    ///
    /// # Panics
    ///
    /// If the file cannot be read or does not parse.
    pub fn load(path: &Path) -> Script {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        Script::parse(&name, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses the text of a script called `name`.
    ///
    /// # Errors
    ///
    /// The first malformed line, with its number.
    pub fn parse(name: &str, text: &str) -> Result<Script, String> {
        let mut script = Script {
            name: name.to_string(),
            flags: Vec::new(),
            lines: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            script
                .add_line(index + 1, raw)
                .map_err(|e| format!("line {}: {e}", index + 1))?;
        }
        Ok(script)
    }

    /// The server's flags: the defaults not overridden, then the `#!` flags.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, value) in DEFAULT_FLAGS {
            if !self.flags.iter().any(|f| f == flag) {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        args.extend(self.flags.iter().cloned());
        args
    }

    /// Runs the script against the server at `addr` and returns what
    /// happened at each step that reads something.
    pub fn run(&self, addr: SocketAddr) -> Vec<Entry> {
        super::transcript::run(self, addr)
    }

    fn add_line(&mut self, number: usize, raw: &str) -> Result<(), String> {
        if let Some(flags) = raw.strip_prefix("#!") {
            self.flags
                .extend(flags.split_whitespace().map(String::from));
            return Ok(());
        }
        if raw.trim().is_empty() || raw.starts_with('#') {
            return Ok(());
        }
        let step = parse_step(raw)?;
        self.lines.push(Line {
            number,
            text: raw.to_string(),
            step,
        });
        Ok(())
    }
}

/// One non-comment line.
fn parse_step(raw: &str) -> Result<Step, String> {
    match raw.strip_prefix('@') {
        Some(directive) => parse_directive(directive),
        None => parse_exchange(raw),
    }
}

fn parse_exchange(raw: &str) -> Result<Step, String> {
    let (request, expect) = raw
        .rsplit_once("=>")
        .ok_or("expected `REQUEST => EXPECT`")?;
    Ok(Step::Exchange {
        request: Template::parse(request.strip_suffix(' ').unwrap_or(request))?,
        expect: parse_expect(expect)?,
    })
}

/// `N`, `closed`, `silent`, `N closed` or `N silent`.
fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut expect = Expect {
        replies: 0,
        then: Then::Open,
    };
    for word in text.split_whitespace() {
        match word {
            "closed" => expect.then = Then::Closed,
            "silent" => expect.then = Then::Silent,
            n => expect.replies = n.parse().map_err(|_| format!("bad expectation {n:?}"))?,
        }
    }
    Ok(expect)
}

fn parse_directive(text: &str) -> Result<Step, String> {
    let (name, arg) = text.split_once(' ').unwrap_or((text, ""));
    match name {
        "conn" => Ok(Step::Conn(parse_arg(arg)?)),
        "hold" => Ok(Step::Hold(parse_arg(arg)?)),
        "stat" => Ok(Step::Stat(arg.trim().to_string())),
        "until" => parse_until(arg),
        _ => Err(format!("unknown directive @{name}")),
    }
}

fn parse_until(arg: &str) -> Result<Step, String> {
    let (request, reply) = arg
        .rsplit_once(" == ")
        .ok_or("expected `@until REQUEST == REPLY`")?;
    let reply = Template::parse(reply)?.render(0);
    Ok(Step::Until {
        request: Template::parse(request)?,
        reply,
    })
}

fn parse_arg<T: std::str::FromStr>(arg: &str) -> Result<T, String> {
    arg.trim()
        .parse()
        .map_err(|_| format!("bad number {arg:?}"))
}
