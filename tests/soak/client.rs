//! One soak client: what it sends, what it expects back, and what it knows of its
//! own keys.

use super::*;

/// A key a client uses: its own or shared, holding records or a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Own(usize),
    OwnCounter(usize),
    Shared(usize),
    SharedCounter(usize),
}

impl Key {
    pub(crate) fn name(self, client: usize) -> String {
        match self {
            Key::Own(i) => format!("own:{client}:{i}"),
            Key::OwnCounter(i) => format!("cnt:{client}:{i}"),
            Key::Shared(i) => format!("shared:{i}"),
            Key::SharedCounter(i) => format!("shcnt:{i}"),
        }
    }

    pub(crate) fn is_counter(self) -> bool {
        matches!(self, Key::OwnCounter(_) | Key::SharedCounter(_))
    }
}

/// The storage commands `soak` sends on record keys (and `Set` on counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Store {
    Set,
    /// `set` with exptime -1: stored, and gone at once.
    SetExpired,
    Add,
    Replace,
    Append,
    Prepend,
    Cas(u64),
    /// `ms`, which answers `HD` where `set` answers `STORED`.
    Meta,
}

impl Store {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Store::Set | Store::SetExpired => "set",
            Store::Add => "add",
            Store::Replace => "replace",
            Store::Append => "append",
            Store::Prepend => "prepend",
            Store::Cas(_) => "cas",
            Store::Meta => "ms",
        }
    }

    pub(crate) fn replies(self) -> &'static [&'static [u8]] {
        match self {
            Store::Set | Store::SetExpired => &[STORED],
            Store::Add | Store::Replace | Store::Append | Store::Prepend => &[STORED, NOT_STORED],
            Store::Cas(_) => &[STORED, EXISTS, NOT_FOUND],
            Store::Meta => &[HD],
        }
    }
}

/// What a request must be answered with, and what the answer says about the keys.
#[derive(Debug)]
pub(crate) enum Expect {
    /// A storage command; `quiet` (noreply) ones are answered with nothing.
    Store {
        key: Key,
        kind: Store,
        data: Vec<u8>,
        quiet: bool,
    },
    /// `get` or `gets` of distinct keys.
    Get(Vec<Key>),
    /// `mg <key> v f k c`.
    MetaGet(Key),
    /// `delete`, or `md` when `meta`.
    Delete {
        key: Key,
        meta: bool,
    },
    Arith {
        key: Key,
        incr: bool,
        delta: u64,
    },
    Touch(Key),
    /// An invalid request: exactly these replies (none for a hidden error). `gone` is a
    /// key the request deletes.
    Refused {
        replies: &'static [&'static [u8]],
        gone: Option<Key>,
    },
    /// The `mn` that closes a pipeline.
    Noop,
}

impl Expect {
    pub(crate) fn replies(&self) -> usize {
        match self {
            Expect::Store { quiet: true, .. } => 0,
            Expect::Refused { replies, .. } => replies.len(),
            _ => 1,
        }
    }
}

/// One request's bytes and what it must be answered with.
pub(crate) struct Op {
    pub(crate) bytes: Vec<u8>,
    pub(crate) expect: Expect,
}

impl Op {
    pub(crate) fn new(bytes: impl Into<Vec<u8>>, expect: Expect) -> Op {
        let bytes = bytes.into();
        Op { bytes, expect }
    }
}

/// What went wrong with a reply.
#[derive(Debug)]
pub(crate) enum Fault {
    /// A value torn, malformed, or of another key.
    Checksum(String),
    /// A reply that is not one the request can get: out of order, misframed, lost.
    Framing(String),
    /// A well-formed answer about a client's own key that contradicts what the client
    /// did to it (a stale value, a key present that it knows is gone).
    Model(String),
}

/// Counts shared by all clients.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) ops: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) checksum: AtomicU64,
    pub(crate) framing: AtomicU64,
    pub(crate) model: AtomicU64,
    pub(crate) notes: Mutex<Vec<String>>,
}

impl Tally {
    pub(crate) fn fault(&self, client: usize, request: &[u8], fault: Fault) {
        let (counter, kind, what) = match fault {
            Fault::Checksum(what) => (&self.checksum, "checksum", what),
            Fault::Framing(what) => (&self.framing, "framing", what),
            Fault::Model(what) => (&self.model, "model", what),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.len() < NOTES_KEPT {
            let request = show(request.split(|&b| b == b'\n').next().unwrap_or(b""));
            notes.push(format!(
                "client {client}, {kind}: {what} (request {request})"
            ));
        }
    }

    pub(crate) fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn faults(&self) -> u64 {
        Tally::count(&self.checksum) + Tally::count(&self.framing) + Tally::count(&self.model)
    }
}

/// What a client knows of one of its own record keys: the value it must hold if it is
/// there at all (`None`: certainly not there), and its CAS if read since the last write.
#[derive(Default)]
pub(crate) struct Own {
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) cas: Option<u64>,
}

/// One connection's request generator and model of its own keys.
pub(crate) struct Client {
    pub(crate) id: usize,
    pub(crate) rng: Rng,
    pub(crate) seq: u64,
    pub(crate) own: Vec<Own>,
    /// Its own counters' values; `None`: certainly not there.
    pub(crate) counters: Vec<Option<u64>>,
    /// The last CAS seen for each shared key.
    pub(crate) shared_cas: Vec<Option<u64>>,
}

impl Client {
    pub(crate) fn new(id: usize) -> Client {
        Client {
            id,
            rng: Rng::new(id as u64 + 1),
            seq: 0,
            own: (0..OWN_KEYS).map(|_| Own::default()).collect(),
            counters: vec![None; OWN_COUNTERS],
            shared_cas: vec![None; SHARED_KEYS],
        }
    }

    /// A pipeline of requests, closed by `mn`, so that a reply too many shows.
    pub(crate) fn pipeline(&mut self, tally: &Tally) -> Vec<Op> {
        let n = 1 + self.rng.below(PIPELINE_MAX);
        let mut ops: Vec<Op> = (0..n).map(|_| self.next_op(tally)).collect();
        ops.push(Op::new(b"mn\r\n", Expect::Noop));
        ops
    }

    pub(crate) fn next_op(&mut self, tally: &Tally) -> Op {
        if self.rng.one_in(5) {
            tally.invalid.fetch_add(1, Ordering::Relaxed);
            return self.invalid_op();
        }
        match self.rng.below(12) {
            0..=2 => self.store_op(),
            3..=4 => self.get_op(),
            5 => self.meta_get_op(),
            6 => self.meta_set_op(),
            7 => self.delete_op(),
            8..=9 => self.arith_op(),
            10 => self.touch_op(),
            _ => self.counter_set_op(),
        }
    }

    pub(crate) fn record_key(&mut self) -> Key {
        match self.rng.below(3) {
            0 => Key::Shared(self.rng.below(SHARED_KEYS)),
            _ => Key::Own(self.rng.below(OWN_KEYS)),
        }
    }

    pub(crate) fn counter_key(&mut self) -> Key {
        match self.rng.below(3) {
            0 => Key::SharedCounter(self.rng.below(SHARED_COUNTERS)),
            _ => Key::OwnCounter(self.rng.below(OWN_COUNTERS)),
        }
    }

    pub(crate) fn any_key(&mut self) -> Key {
        match self.rng.below(4) {
            0 => self.counter_key(),
            _ => self.record_key(),
        }
    }

    pub(crate) fn new_record(&mut self, key: Key, len: usize) -> Vec<u8> {
        self.seq += 1;
        record(&key.name(self.id), self.id, self.seq, len)
    }

    /// A CAS unique that no item has: the server counts them up from 1.
    pub(crate) fn unknown_cas(&mut self) -> u64 {
        self.rng.next() | 1 << 63
    }

    pub(crate) fn store_kind(&mut self, key: Key) -> Store {
        let (cas, appendable) = match key {
            Key::Own(i) => {
                let own = &self.own[i];
                let short = own.value.as_ref().map_or(true, |v| v.len() < APPEND_LIMIT);
                (own.cas, short)
            }
            Key::Shared(i) => (self.shared_cas[i], true),
            _ => (None, false),
        };
        match self.rng.below(9) {
            0 => Store::SetExpired,
            1 => Store::Add,
            2 => Store::Replace,
            3 if appendable => Store::Append,
            4 if appendable => Store::Prepend,
            5 => Store::Cas(cas.unwrap_or_else(|| self.unknown_cas())),
            6 => Store::Cas(self.unknown_cas()),
            _ => Store::Set,
        }
    }

    pub(crate) fn store_op(&mut self) -> Op {
        let key = self.record_key();
        let kind = self.store_kind(key);
        let len = match kind {
            Store::Append | Store::Prepend => 1 + self.rng.below(40),
            _ => payload_len(&mut self.rng),
        };
        let data = self.new_record(key, len);
        let quiet = (kind == Store::Set || matches!(key, Key::Shared(_))) && self.rng.one_in(4);
        self.store(key, kind, data, quiet)
    }

    pub(crate) fn store(&mut self, key: Key, kind: Store, data: Vec<u8>, quiet: bool) -> Op {
        let name = key.name(self.id);
        let (flags, len) = (flags_for(&name), data.len());
        let mut line = match kind {
            Store::Cas(unique) => format!("cas {name} {flags} 0 {len} {unique}"),
            Store::SetExpired => format!("set {name} {flags} -1 {len}"),
            Store::Meta => format!("ms {name} {len} F{flags} T0"),
            _ => format!("{} {name} {flags} 0 {len}", kind.verb()),
        };
        if quiet {
            line.push_str(" noreply");
        }
        let bytes = [line.as_bytes(), b"\r\n", &data, b"\r\n"].concat();
        Op::new(
            bytes,
            Expect::Store {
                key,
                kind,
                data,
                quiet,
            },
        )
    }

    pub(crate) fn meta_set_op(&mut self) -> Op {
        let key = self.record_key();
        let len = payload_len(&mut self.rng);
        let data = self.new_record(key, len);
        self.store(key, Store::Meta, data, false)
    }

    pub(crate) fn counter_set_op(&mut self) -> Op {
        let key = self.counter_key();
        let value = match self.rng.below(3) {
            0 => self.rng.next(),
            _ => self.rng.below(1000) as u64,
        };
        let quiet = self.rng.one_in(4);
        self.store(key, Store::Set, value.to_string().into_bytes(), quiet)
    }

    pub(crate) fn get_op(&mut self) -> Op {
        let n = 1 + self.rng.below(8);
        let mut keys: Vec<Key> = Vec::new();
        while keys.len() < n {
            let key = self.any_key();
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let verb = if self.rng.one_in(2) { "get" } else { "gets" };
        let names: Vec<String> = keys.iter().map(|k| k.name(self.id)).collect();
        Op::new(format!("{verb} {}\r\n", names.join(" ")), Expect::Get(keys))
    }

    pub(crate) fn meta_get_op(&mut self) -> Op {
        let key = self.record_key();
        Op::new(
            format!("mg {} v f k c\r\n", key.name(self.id)),
            Expect::MetaGet(key),
        )
    }

    pub(crate) fn delete_op(&mut self) -> Op {
        let key = self.any_key();
        let meta = self.rng.one_in(2);
        let verb = if meta { "md" } else { "delete" };
        Op::new(
            format!("{verb} {}\r\n", key.name(self.id)),
            Expect::Delete { key, meta },
        )
    }

    pub(crate) fn arith_op(&mut self) -> Op {
        let key = match self.rng.below(5) {
            0 => self.record_key(),
            _ => self.counter_key(),
        };
        let incr = self.rng.one_in(2);
        let delta = match self.rng.below(4) {
            0 => self.rng.next(),
            _ => self.rng.below(1000) as u64,
        };
        let verb = if incr { "incr" } else { "decr" };
        Op::new(
            format!("{verb} {} {delta}\r\n", key.name(self.id)),
            Expect::Arith { key, incr, delta },
        )
    }

    pub(crate) fn touch_op(&mut self) -> Op {
        let key = self.any_key();
        let exptime = if self.rng.one_in(2) { 0 } else { 3600 };
        Op::new(
            format!("touch {} {exptime}\r\n", key.name(self.id)),
            Expect::Touch(key),
        )
    }
}

/// The invalid requests, with the bytes corecache answers (checked against
/// memcached 1.6.18, which differs only where it does not swallow the data block of a
/// refused `set` and answers an extra `ERROR` for it; corecache follows later
/// memcached there, see the README).
impl Client {
    pub(crate) fn invalid_op(&mut self) -> Op {
        if self.rng.one_in(500) {
            return self.too_large_op();
        }
        let key = self.record_key();
        let (bytes, replies) = self.invalid_request(key);
        Op::new(
            bytes,
            Expect::Refused {
                replies,
                gone: None,
            },
        )
    }

    /// An invalid request about `key` that leaves it as it was, and its replies.
    pub(crate) fn invalid_request(&mut self, key: Key) -> (Vec<u8>, &'static [&'static [u8]]) {
        let name = key.name(self.id);
        let long = self.long_key();
        let text = |request: String| request.into_bytes();
        match self.rng.below(14) {
            0 => (text(format!("bogus {name}\r\n")), &[ERROR]),
            1 => (text(format!("get {long}\r\n")), &[BAD_FORMAT]),
            2 => (self.set_line(&long, "0", key, ""), &[BAD_FORMAT]),
            3 => (self.set_line(&name, "abc", key, ""), &[BAD_FORMAT]),
            4 => (self.misframed_set(key), &[BAD_CHUNK, ERROR]),
            5 => (self.quiet_error(key), &[]),
            6 => (
                text(format!("set {name} 0 0 1 noreply\r\nxyz\r\n")),
                &[ERROR],
            ),
            7 => (text(format!("delete {name} 10\r\n")), &[DELETE_USAGE]),
            8 => (text(format!("touch {name} abc\r\n")), &[BAD_EXPTIME]),
            9 => (text(format!("incr {name} -1\r\n")), &[BAD_DELTA]),
            10 => (text(format!("mg {name} v v\r\n")), &[DUPLICATE_FLAG]),
            11 => (text(format!("mg {name} !\r\n")), &[INVALID_FLAG]),
            12 => (text(format!("GET {name}\r\n")), &[ERROR]),
            _ => (
                text(format!("\r\nms {name} abc\r\nx\r\n")),
                &[ERROR, BAD_FORMAT, ERROR],
            ),
        }
    }

    /// A key one to fifty bytes over the 250-byte limit.
    pub(crate) fn long_key(&mut self) -> String {
        let len = 251 + self.rng.below(50);
        format!("{:x<len$}", format!("long:{}:", self.id))
    }

    /// A `set` of a well-formed record for `key`, under the name `name` and with
    /// `exptime` as given; `tail` goes after the record, before its `\r\n`.
    pub(crate) fn set_line(&mut self, name: &str, exptime: &str, key: Key, tail: &str) -> Vec<u8> {
        let len = payload_len(&mut self.rng);
        let data = self.new_record(key, len);
        let head = format!(
            "set {name} {} {exptime} {}\r\n",
            flags_for(name),
            data.len()
        );
        [head.as_bytes(), &data, tail.as_bytes(), b"\r\n"].concat()
    }

    /// A `set` whose data block does not end where its length says: one byte too
    /// many, or a block that runs into the next line. Either way the `\n` left over is
    /// an empty command line. The key keeps its old value.
    pub(crate) fn misframed_set(&mut self, key: Key) -> Vec<u8> {
        let name = key.name(self.id);
        if self.rng.one_in(2) {
            return self.set_line(&name, "0", key, "x");
        }
        let data = self.new_record(key, 4);
        let head = format!("set {name} {} 0 {}\r\n", flags_for(&name), data.len() + 3);
        [head.as_bytes(), &data, b"\r\nzz\r\n"].concat()
    }

    /// A `noreply` request that fails, so that nothing at all is answered.
    pub(crate) fn quiet_error(&mut self, key: Key) -> Vec<u8> {
        let name = key.name(self.id);
        match self.rng.below(5) {
            0 => format!("incr {name} abc noreply\r\n").into_bytes(),
            1 => format!("delete {} noreply\r\n", self.long_key()).into_bytes(),
            2 => format!("touch {name} abc noreply\r\n").into_bytes(),
            3 => format!("incr {name} 1 noreply\r\n").into_bytes(),
            _ => {
                let long = self.long_key();
                format!("set {long} 0 0 5 noreply\r\nhello\r\n").into_bytes()
            }
        }
    }

    /// A `set` over `-I`: refused once its block has been read, and the old value of
    /// the key deleted.
    pub(crate) fn too_large_op(&mut self) -> Op {
        let key = self.record_key();
        let name = key.name(self.id);
        let head = format!("set {name} {} 0 {TOO_LARGE}\r\n", flags_for(&name));
        let mut bytes = head.into_bytes();
        bytes.resize(bytes.len() + TOO_LARGE, b'z');
        bytes.extend_from_slice(b"\r\n");
        let replies = &[TOO_LARGE_REPLY];
        Op::new(
            bytes,
            Expect::Refused {
                replies,
                gone: Some(key),
            },
        )
    }
}

/// Checking replies against what the client knows, and learning from them.
impl Client {
    pub(crate) fn settle(&mut self, expect: &Expect, replies: &[Vec<u8>]) -> Result<(), Fault> {
        match expect {
            Expect::Store {
                key, kind, data, ..
            } => self.settle_store(*key, *kind, data, replies.first()),
            Expect::Get(keys) => self.settle_get(keys, &replies[0]),
            Expect::MetaGet(key) => self.settle_meta_get(*key, &replies[0]),
            Expect::Delete { key, meta } => self.settle_delete(*key, *meta, &replies[0]),
            Expect::Arith { key, incr, delta } => {
                self.settle_arith(*key, (*incr, *delta), &replies[0])
            }
            Expect::Touch(key) => self.settle_touch(*key, &replies[0]),
            Expect::Refused {
                replies: want,
                gone,
            } => self.settle_refused(want, *gone, replies),
            Expect::Noop => status(&replies[0], &[b"MN"]).map(drop),
        }
    }

    /// A storage reply; `None` for a `noreply` one, taken as stored.
    pub(crate) fn settle_store(
        &mut self,
        key: Key,
        kind: Store,
        data: &[u8],
        reply: Option<&Vec<u8>>,
    ) -> Result<(), Fault> {
        let word = match reply {
            Some(reply) => status(reply, kind.replies())?,
            None => STORED,
        };
        let stored = word == STORED || word == HD;
        match key {
            Key::Own(i) => own_store(&mut self.own[i], kind, data, word).map_err(Fault::Model),
            Key::OwnCounter(i) if stored => {
                self.counters[i] = Some(counter_value(data).map_err(Fault::Model)?);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn settle_get(&mut self, keys: &[Key], reply: &[u8]) -> Result<(), Fault> {
        let items = parse_values(reply).map_err(Fault::Framing)?;
        let names: Vec<String> = keys.iter().map(|k| k.name(self.id)).collect();
        let mut next = 0;
        for item in &items {
            let Some(at) = names[next..].iter().position(|n| n.as_bytes() == item.key) else {
                let what = format!("{} not asked for here, or out of order", show(item.key));
                return Err(Fault::Framing(what));
            };
            keys[next..next + at].iter().for_each(|&k| self.missed(k));
            self.check_item(keys[next + at], &names[next + at], item)?;
            next += at + 1;
        }
        keys[next..].iter().for_each(|&k| self.missed(k));
        Ok(())
    }

    /// An `mg <key> v f k c` reply: `EN k<key>` (memcached echoes `k` on a miss too),
    /// or the value.
    pub(crate) fn settle_meta_get(&mut self, key: Key, reply: &[u8]) -> Result<(), Fault> {
        let name = key.name(self.id);
        if reply == format!("EN k{name}\r\n").as_bytes() {
            self.missed(key);
            return Ok(());
        }
        let item = parse_meta_value(reply).map_err(Fault::Framing)?;
        if item.key != name.as_bytes() {
            return Err(Fault::Framing(format!(
                "mg {name} answered {}",
                show(reply)
            )));
        }
        self.check_item(key, &name, &item)
    }

    /// A hit: a well-formed value of this key, and for an own key the one it wrote.
    pub(crate) fn check_item(
        &mut self,
        key: Key,
        name: &str,
        item: &Item<'_>,
    ) -> Result<(), Fault> {
        if item.flags != flags_for(name) {
            let what = format!("{name} has flags {}, not its own", item.flags);
            return Err(Fault::Checksum(what));
        }
        if key.is_counter() {
            let value = counter_value(item.data).map_err(Fault::Checksum)?;
            return self.check_counter(key, value);
        }
        check_records(name, item.data).map_err(Fault::Checksum)?;
        match key {
            Key::Own(i) => check_own(&mut self.own[i], item).map_err(Fault::Model),
            Key::Shared(i) => {
                self.shared_cas[i] = item.cas.or(self.shared_cas[i]);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn check_counter(&mut self, key: Key, value: u64) -> Result<(), Fault> {
        let Key::OwnCounter(i) = key else {
            return Ok(());
        };
        match self.counters[i] {
            Some(want) if want == value => Ok(()),
            want => Err(Fault::Model(format!(
                "counter {i} is {value}, want {want:?}"
            ))),
        }
    }

    /// A miss: the key is not there, whatever the client last did to it.
    pub(crate) fn missed(&mut self, key: Key) {
        match key {
            Key::Own(i) => self.own[i] = Own::default(),
            Key::OwnCounter(i) => self.counters[i] = None,
            _ => {}
        }
    }

    /// Whether the client knows the key may be there; `true` for shared keys.
    pub(crate) fn may_exist(&self, key: Key) -> bool {
        match key {
            Key::Own(i) => self.own[i].value.is_some(),
            Key::OwnCounter(i) => self.counters[i].is_some(),
            _ => true,
        }
    }

    /// Fails when `hit` says a key exists that the client knows is gone.
    pub(crate) fn found(&self, key: Key, hit: bool) -> Result<(), Fault> {
        match hit && !self.may_exist(key) {
            true => Err(Fault::Model(format!("{key:?} found, but it was gone"))),
            false => Ok(()),
        }
    }

    pub(crate) fn settle_delete(
        &mut self,
        key: Key,
        meta: bool,
        reply: &[u8],
    ) -> Result<(), Fault> {
        let words: &[&'static [u8]] = if meta {
            &[HD, NF]
        } else {
            &[DELETED, NOT_FOUND]
        };
        let word = status(reply, words)?;
        self.found(key, word == HD || word == DELETED)?;
        self.missed(key);
        Ok(())
    }

    pub(crate) fn settle_touch(&mut self, key: Key, reply: &[u8]) -> Result<(), Fault> {
        let word = status(reply, &[TOUCHED, NOT_FOUND])?;
        self.found(key, word == TOUCHED)?;
        if word == NOT_FOUND {
            self.missed(key);
        }
        Ok(())
    }

    /// An `incr`/`decr` reply: the new value of a counter, or a refusal for a record.
    pub(crate) fn settle_arith(
        &mut self,
        key: Key,
        step: (bool, u64),
        reply: &[u8],
    ) -> Result<(), Fault> {
        if reply == b"NOT_FOUND\r\n" {
            self.missed(key);
            return Ok(());
        }
        if !key.is_counter() {
            status(reply, &[NON_NUMERIC])?;
            return self.found(key, true);
        }
        let line = reply.strip_suffix(b"\r\n").unwrap_or(reply);
        let value = number(line).map_err(Fault::Framing)?;
        self.found(key, true)?;
        match key {
            Key::OwnCounter(i) => self.stepped(i, step, value),
            _ => Ok(()),
        }
    }

    /// Checks that own counter `i` went from what it was by `delta`: `incr` wraps at
    /// 2^64, `decr` stops at 0.
    pub(crate) fn stepped(
        &mut self,
        i: usize,
        (incr, delta): (bool, u64),
        value: u64,
    ) -> Result<(), Fault> {
        let old = self.counters[i].replace(value).unwrap_or_default();
        let want = match incr {
            true => old.wrapping_add(delta),
            false => old.saturating_sub(delta),
        };
        match value == want {
            true => Ok(()),
            false => Err(Fault::Model(format!(
                "counter {i} became {value}, want {want}"
            ))),
        }
    }

    pub(crate) fn settle_refused(
        &mut self,
        want: &[&'static [u8]],
        gone: Option<Key>,
        replies: &[Vec<u8>],
    ) -> Result<(), Fault> {
        for (reply, &word) in replies.iter().zip(want) {
            status(reply, &[word])?;
        }
        if let Some(key) = gone {
            self.missed(key);
        }
        Ok(())
    }
}

/// What a storage reply says about a client's own record key, given what it knew.
pub(crate) fn own_store(
    own: &mut Own,
    kind: Store,
    data: &[u8],
    word: &[u8],
) -> Result<(), String> {
    let present = own.value.is_some();
    let stored = word == STORED || word == HD;
    match (kind, stored) {
        (Store::Add, false) if !present => return Err("add refused on a key that was gone".into()),
        (Store::Replace | Store::Append | Store::Prepend, true) if !present => {
            return Err(format!("{kind:?} stored on a key that was gone"));
        }
        (Store::Cas(unique), true) if own.cas != Some(unique) => {
            return Err("cas stored with a stale unique".into());
        }
        (Store::Cas(unique), false) if word == EXISTS && (!present || own.cas == Some(unique)) => {
            return Err(format!("cas answered EXISTS, knowing {:?}", own.cas));
        }
        _ => {}
    }
    let old = own.value.take().unwrap_or_default();
    own.value = match (kind, stored) {
        (Store::SetExpired, _) => None,
        (Store::Append, true) => Some([&old, data].concat()),
        (Store::Prepend, true) => Some([data, &old].concat()),
        (_, true) => Some(data.to_vec()),
        (Store::Add, false) => Some(old),
        (Store::Cas(_), false) if word == EXISTS => Some(old),
        (_, false) => None,
    };
    if stored || own.value.is_none() {
        own.cas = None;
    }
    Ok(())
}

/// A hit on a client's own record key must be the value it last stored.
pub(crate) fn check_own(own: &mut Own, item: &Item<'_>) -> Result<(), String> {
    match &own.value {
        Some(value) if value == item.data => {
            own.cas = item.cas.or(own.cas);
            Ok(())
        }
        Some(value) => Err(format!(
            "holds {}, want {}",
            describe(item.data),
            describe(value)
        )),
        None => Err(format!("holds {} but was gone", describe(item.data))),
    }
}

/// A short description of a value: its length and first record's header.
pub(crate) fn describe(value: &[u8]) -> String {
    let head: Vec<&[u8]> = value.splitn(4, |&b| b == b'|').take(3).collect();
    format!("{} bytes from {}", value.len(), show(&head.join(&b'|')))
}
