//! The timed part of a run: C connections spread over T threads, each thread one mio
//! poll over its connections.
//!
//! A connection writes a batch of `depth` requests and waits for all their replies
//! before the next batch. Closed loop, the next batch leaves as soon as the last reply
//! is in. Open loop, batch `i` of a connection is due at `start + offset + i * interval`
//! and latency is counted from that due time, not from when it could leave, so a server
//! that stalls is charged for the requests that queued behind the stall (no coordinated
//! omission). This module counts; `report` turns the counts into figures.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::reply::{self, Framing, StoreReply};
use crate::timer::Timer;
use crate::workload::{MissPolicy, ReadCommand, Workload};

/// How long replies may keep coming after the last request was sent.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// The longest poll wait, so that an abort elsewhere is seen promptly.
const POLL_SLICE: Duration = Duration::from_millis(50);
/// The poll token of the open-loop timer; connections are numbered from 0.
const TIMER: Token = Token(usize::MAX - 1);
/// Bytes asked of one `read`.
const READ_CHUNK: usize = 64 * 1024;
/// Latencies are recorded in nanoseconds up to this bound, with 3 significant digits.
const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// When a phase stops issuing requests.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many requests over all connections (follow-up sets not counted).
    Requests(u64),
}

/// How requests are paced.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// Each connection sends its next batch as soon as the previous one is answered.
    Closed,
    /// This many requests per second over all connections together.
    Open(f64),
}

/// One phase of a run.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub stop: Stop,
    pub pace: Pace,
    pub connections: usize,
    pub threads: usize,
    pub seed: u64,
}

/// What a phase counted.
pub struct Tally {
    /// Requests answered (a multi-get is one request).
    pub requests: u64,
    pub reads: u64,
    pub writes: u64,
    /// Keys asked for by reads.
    pub keys: u64,
    pub hits: u64,
    pub misses: u64,
    /// Misses on keys never read or written before in this process.
    pub first_misses: u64,
    pub framing: Framing,
    /// Nanoseconds from each request's due time to its reply.
    pub latency: Histogram<u64>,
    pub started: Instant,
    pub finished: Instant,
}

impl Tally {
    fn new(started: Instant) -> Self {
        Tally {
            requests: 0,
            reads: 0,
            writes: 0,
            keys: 0,
            hits: 0,
            misses: 0,
            first_misses: 0,
            framing: Framing::default(),
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("valid bounds"),
            started,
            finished: started,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.reads += other.reads;
        self.writes += other.writes;
        self.keys += other.keys;
        self.hits += other.hits;
        self.misses += other.misses;
        self.first_misses += other.first_misses;
        self.framing.add(&other.framing);
        self.latency.add(&other.latency).expect("same bounds");
        self.started = self.started.min(other.started);
        self.finished = self.finished.max(other.finished);
    }

    /// Seconds from the first request to the last reply.
    pub fn elapsed(&self) -> f64 {
        (self.finished - self.started).as_secs_f64()
    }
}

/// Runs one phase against `addr` and returns what all threads counted.
///
/// # Errors
/// A connection that fails, an error reply or lost framing on any connection (the other
/// threads then stop too), or replies still missing `DRAIN_LIMIT` after the end.
pub fn run(addr: SocketAddr, workload: &Workload, phase: &Phase) -> Result<Tally, String> {
    let abort = AtomicBool::new(false);
    let started = Instant::now();
    let results: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..phase.threads)
            .map(|t| {
                let conns = share(phase.connections, phase.threads, t);
                let abort = &abort;
                scope.spawn(move || {
                    let result = Worker::new(addr, workload, phase, conns, started)
                        .and_then(|worker| worker.run(abort));
                    if result.is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread panicked"))
            .collect()
    });
    let mut total = Tally::new(started);
    for result in results {
        total.merge(result?);
    }
    Ok(total)
}

/// The range of connections (global numbers) that thread `t` of `threads` gets.
fn share(connections: usize, threads: usize, t: usize) -> std::ops::Range<usize> {
    connections * t / threads..connections * (t + 1) / threads
}

/// One request in flight: what its reply looks like and when it was due.
struct Pending {
    expect: Expect,
    due: Instant,
}

#[derive(Clone, Copy)]
enum Expect {
    Values { keys: usize },
    MetaValue,
    Store(StoreReply),
}

/// One thread's connections and counts.
struct Worker<'a> {
    workload: &'a Workload,
    poll: Poll,
    conns: Vec<Conn>,
    tally: Tally,
    /// When issuing stops (duration phases).
    end: Option<Instant>,
    /// Time between two batches of one connection (open loop).
    interval: Option<Duration>,
    /// Wakes the poll when a batch falls due (open loop).
    timer: Option<Timer>,
}

impl<'a> Worker<'a> {
    fn new(
        addr: SocketAddr,
        workload: &'a Workload,
        phase: &Phase,
        conns: std::ops::Range<usize>,
        started: Instant,
    ) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let interval = match phase.pace {
            Pace::Closed => None,
            Pace::Open(rate) => Some(Duration::from_secs_f64(
                phase.connections as f64 * workload.depth as f64 / rate,
            )),
        };
        let budget = |c: usize| match phase.stop {
            Stop::After(_) => u64::MAX,
            Stop::Requests(n) => share(n as usize, phase.connections, c).len() as u64,
        };
        let mut list = Vec::with_capacity(conns.len());
        for (slot, c) in conns.enumerate() {
            // Open loop, connections start spread over one interval.
            let offset =
                interval.map_or(Duration::ZERO, |i| i * c as u32 / phase.connections as u32);
            let seed = phase.seed.wrapping_mul(1_000_003).wrapping_add(c as u64);
            let conn = Conn::open(addr, &poll, Token(slot), seed, started + offset, budget(c))?;
            list.push(conn);
        }
        let end = match phase.stop {
            Stop::After(d) => Some(started + d),
            Stop::Requests(_) => None,
        };
        let timer = match interval {
            Some(_) => Some(Timer::new(poll.registry(), TIMER)?),
            None => None,
        };
        let tally = Tally::new(started);
        Ok(Worker {
            workload,
            poll,
            conns: list,
            tally,
            end,
            interval,
            timer,
        })
    }

    fn run(mut self, abort: &AtomicBool) -> Result<Tally, String> {
        let mut events = Events::with_capacity(1024);
        let mut drain_deadline = None;
        loop {
            if abort.load(Ordering::Relaxed) {
                return Err("stopped: another connection failed".into());
            }
            let now = Instant::now();
            let schedule = self.issue_due(now)?;
            let in_flight = !self.conns.iter().all(Conn::idle);
            if !schedule.sending && !in_flight {
                return Ok(self.tally);
            }
            if !schedule.sending {
                let deadline = *drain_deadline.get_or_insert(now + DRAIN_LIMIT);
                if now > deadline {
                    return Err(format!(
                        "replies still missing {DRAIN_LIMIT:?} after the end"
                    ));
                }
            }
            if let (Some(timer), Some(at)) = (&mut self.timer, schedule.next_due) {
                if at < now + POLL_SLICE {
                    timer.arm(at, now)?;
                }
            }
            self.poll
                .poll(&mut events, Some(POLL_SLICE))
                .map_err(|e| format!("poll: {e}"))?;
            let read_at = Instant::now();
            for event in events.iter() {
                if event.token() == TIMER {
                    self.timer.as_mut().expect("timer registered").clear();
                    continue;
                }
                let conn = &mut self.conns[event.token().0];
                if event.is_writable() {
                    conn.flush(self.poll.registry())?;
                }
                if event.is_readable() || event.is_read_closed() {
                    conn.receive(read_at, self.workload, &mut self.tally)?;
                }
            }
        }
    }

    /// Sends a batch on every idle connection whose batch is due, and says when the
    /// next one falls due.
    fn issue_due(&mut self, now: Instant) -> Result<Schedule, String> {
        let mut schedule = Schedule {
            next_due: None,
            sending: false,
        };
        if self.end.is_some_and(|end| now >= end) {
            return Ok(schedule);
        }
        for conn in &mut self.conns {
            if conn.budget == 0 {
                continue;
            }
            schedule.sending = true;
            let due = match self.interval {
                None => now,
                Some(_) => conn.next_due,
            };
            if conn.idle() && due <= now {
                conn.send_batch(self.workload, due, self.poll.registry())?;
                if let Some(interval) = self.interval {
                    conn.next_due += interval;
                }
            }
            if self.interval.is_some() && conn.idle() {
                let next = conn.next_due;
                schedule.next_due = Some(schedule.next_due.map_or(next, |d| d.min(next)));
            }
        }
        Ok(schedule)
    }
}

/// What `issue_due` leaves to wait for.
struct Schedule {
    /// The earliest due time of an idle connection (open loop).
    next_due: Option<Instant>,
    /// Whether any connection will send again.
    sending: bool,
}

/// One connection: its buffers, the requests it has in flight and its random draws.
struct Conn {
    stream: TcpStream,
    token: Token,
    interest: Interest,
    rng: SmallRng,
    out: Vec<u8>,
    written: usize,
    /// Bytes received: `parsed..filled` are not accounted for yet.
    input: Vec<u8>,
    filled: usize,
    parsed: usize,
    pending: VecDeque<Pending>,
    /// Key numbers of the reads in flight, in request order.
    asked: VecDeque<u64>,
    /// Keys to write next because a read missed them (`MissPolicy::SetKey`).
    follow_ups: Vec<u64>,
    /// Key numbers found by the reply being parsed (scratch).
    found: Vec<u64>,
    ids: Vec<u64>,
    next_due: Instant,
    /// Requests this connection may still start.
    budget: u64,
}

impl Conn {
    fn open(
        addr: SocketAddr,
        poll: &Poll,
        token: Token,
        seed: u64,
        first_due: Instant,
        budget: u64,
    ) -> Result<Self, String> {
        let std_stream =
            std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        std_stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        std_stream
            .set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry()
            .register(&mut stream, token, Interest::READABLE)
            .map_err(|e| format!("register: {e}"))?;
        Ok(Conn {
            stream,
            token,
            interest: Interest::READABLE,
            rng: SmallRng::seed_from_u64(seed),
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            filled: 0,
            parsed: 0,
            pending: VecDeque::new(),
            asked: VecDeque::new(),
            follow_ups: Vec::new(),
            found: Vec::new(),
            ids: Vec::new(),
            next_due: first_due,
            budget,
        })
    }

    fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes up to `depth` requests: first the sets owed for misses, then drawn ones.
    fn send_batch(
        &mut self,
        w: &Workload,
        due: Instant,
        registry: &Registry,
    ) -> Result<(), String> {
        for _ in 0..w.depth {
            if let Some(id) = self.follow_ups.pop() {
                self.push_write(w, id, due);
            } else if self.budget > 0 {
                self.budget -= 1;
                self.push_drawn(w, due);
            } else {
                break;
            }
        }
        self.flush(registry)
    }

    fn push_drawn(&mut self, w: &Workload, due: Instant) {
        if w.set_ratio > 0.0 && self.rng.random_bool(w.set_ratio) {
            let id = w.keys.sample(&mut self.rng);
            self.push_write(w, id, due);
            return;
        }
        self.ids.clear();
        for _ in 0..w.keys_per_read() {
            let id = w.keys.sample(&mut self.rng);
            self.ids.push(id);
        }
        w.encode_read(&mut self.out, &self.ids);
        self.asked.extend(self.ids.iter().copied());
        let expect = match w.read {
            ReadCommand::MetaGet => Expect::MetaValue,
            ReadCommand::Get | ReadCommand::MultiGet(_) => Expect::Values {
                keys: self.ids.len(),
            },
        };
        self.pending.push_back(Pending { expect, due });
    }

    fn push_write(&mut self, w: &Workload, id: u64, due: Instant) {
        let len = w.sizes.sample(&mut self.rng);
        w.seen.mark(id);
        w.encode_write(&mut self.out, id, len);
        let reply = match w.read {
            ReadCommand::MetaGet => StoreReply::Hd,
            ReadCommand::Get | ReadCommand::MultiGet(_) => StoreReply::Stored,
        };
        self.pending.push_back(Pending {
            expect: Expect::Store(reply),
            due,
        });
    }

    /// Writes what it can; asks the poll for writability only while a write is blocked.
    fn flush(&mut self, registry: &Registry) -> Result<(), String> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return self.interest(registry, Interest::READABLE | Interest::WRITABLE);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        self.out.clear();
        self.written = 0;
        self.interest(registry, Interest::READABLE)
    }

    fn interest(&mut self, registry: &Registry, interest: Interest) -> Result<(), String> {
        if self.interest != interest {
            registry
                .reregister(&mut self.stream, self.token, interest)
                .map_err(|e| format!("reregister: {e}"))?;
            self.interest = interest;
        }
        Ok(())
    }

    /// Reads all that is there and accounts for every complete reply.
    fn receive(&mut self, now: Instant, w: &Workload, tally: &mut Tally) -> Result<(), String> {
        loop {
            if self.filled == self.input.len() {
                let grown = (self.input.len() * 2).max(READ_CHUNK);
                self.input.resize(grown, 0);
            }
            let space = self.input.len() - self.filled;
            match self.stream.read(&mut self.input[self.filled..]) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => {
                    self.filled += n;
                    // A short read emptied the socket; more data makes a new edge.
                    if n < space {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        while self.parse_one(now, w, tally)? {}
        self.input.copy_within(self.parsed..self.filled, 0);
        self.filled -= self.parsed;
        self.parsed = 0;
        if self.filled > 0 && self.pending.is_empty() {
            let extra = String::from_utf8_lossy(&self.input[..self.filled]).into_owned();
            return Err(format!("reply to no request: {extra:?}"));
        }
        Ok(())
    }

    /// Accounts for the reply to the oldest request in flight, if it is complete.
    fn parse_one(&mut self, now: Instant, w: &Workload, tally: &mut Tally) -> Result<bool, String> {
        let Some(front) = self.pending.front() else {
            return Ok(false);
        };
        let (expect, due) = (front.expect, front.due);
        let buf = &self.input[self.parsed..self.filled];
        let len = match expect {
            Expect::Values { keys } => {
                let found = &mut self.found;
                match reply::parse_values(buf, &w.prefix, found, &mut tally.framing)
                    .map_err(fail)?
                {
                    None => return Ok(false),
                    Some(len) => {
                        self.match_keys(keys, w, tally)?;
                        len
                    }
                }
            }
            Expect::MetaValue => {
                match reply::parse_meta_value(buf, &mut tally.framing).map_err(fail)? {
                    None => return Ok(false),
                    Some(meta) => {
                        let id = self.asked.pop_front().expect("a key for every read");
                        self.count_key(id, meta.hit, w, tally);
                        meta.len
                    }
                }
            }
            Expect::Store(want) => {
                match reply::parse_store(buf, want, &mut tally.framing).map_err(fail)? {
                    None => return Ok(false),
                    Some(len) => len,
                }
            }
        };
        self.parsed += len;
        self.pending.pop_front();
        tally.requests += 1;
        match expect {
            Expect::Store(_) => tally.writes += 1,
            Expect::Values { .. } | Expect::MetaValue => tally.reads += 1,
        }
        tally
            .latency
            .saturating_record((now - due).as_nanos() as u64);
        tally.finished = now;
        Ok(true)
    }

    /// Pairs the keys of a text reply with the keys asked: a server returns the keys it
    /// has in request order, so a key asked and not next in the reply is a miss.
    fn match_keys(&mut self, keys: usize, w: &Workload, tally: &mut Tally) -> Result<(), String> {
        let mut found = 0;
        for _ in 0..keys {
            let id = self.asked.pop_front().expect("a key for every read");
            let hit = self.found.get(found) == Some(&id);
            found += usize::from(hit);
            self.count_key(id, hit, w, tally);
        }
        if found != self.found.len() {
            return Err(format!(
                "framing lost: VALUE for key number {} not asked for, or out of order",
                self.found[found]
            ));
        }
        Ok(())
    }

    fn count_key(&mut self, id: u64, hit: bool, w: &Workload, tally: &mut Tally) {
        let first = w.seen.mark(id);
        tally.keys += 1;
        if hit {
            tally.hits += 1;
            return;
        }
        tally.misses += 1;
        tally.first_misses += u64::from(first);
        if w.on_miss == MissPolicy::SetKey {
            self.follow_ups.push(id);
        }
    }
}

fn fail(e: reply::ReplyError) -> String {
    e.to_string()
}
