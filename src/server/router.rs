//! Which worker owns a key, and how requests for another worker's shard travel there
//! and back.
//!
//! A worker never touches another worker's shard. During one event-loop turn it gathers
//! the requests for each other worker into one [`Batch`], and at the end of the turn
//! sends each batch as one message; the owner runs them in order, writes the replies
//! into the same batch and sends it back. A worker is woken only when it is parked in
//! its poll, so a busy owner costs the sender no system call.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam::channel::{self, Receiver, Sender};
use mio::Waker;

use super::listener::{Endpoint, Stream};
use crate::protocol::text::GetKind;

/// The worker whose shard holds keys with this hash: the hash's high half scaled onto
/// the workers, so that the low bits stay free for the shard's own buckets.
pub fn owner(hash: u64, workers: usize) -> usize {
    (((hash >> 32) * workers as u64) >> 32) as usize
}

/// Names one connection of a worker across messages; `generation` tells a reused slot
/// from the connection that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId {
    /// The connection's slot in its worker.
    pub slot: usize,
    /// The slot's generation when the request was sent.
    pub generation: u32,
}

/// How the owner reads a forwarded request's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A whole single-key text request (line and data block), parsed again by the owner.
    Text,
    /// One key of a text multi-get; the bytes are the key.
    TextGet(GetKind),
    /// A whole binary request packet with a key.
    Binary,
    /// The header, extras and key of a binary store whose value exceeded `-I` and was
    /// dropped: the owner answers E2BIG (and a SET removes the old value).
    BinaryTooLarge,
    /// `stats cachedump`: this worker's part of the listing.
    CacheDump {
        /// The slab class.
        class: u8,
        /// The most keys to list.
        limit: u32,
    },
}

/// One forwarded request.
#[derive(Clone, Debug)]
pub struct Record {
    /// The connection waiting for the reply.
    pub conn: ConnId,
    /// How to read the bytes.
    pub kind: RecordKind,
    /// The request's bytes in [`Batch::data`].
    pub range: Range<usize>,
}

/// Requests from one worker to another, and then their replies on the way back. Its
/// buffers are reused for the next batch to the same worker.
#[derive(Debug, Default)]
pub struct Batch {
    /// The worker that sent the requests.
    pub origin: usize,
    /// The worker that runs them.
    pub target: usize,
    /// The requests, in the order they were made.
    pub records: Vec<Record>,
    /// The requests' bytes.
    pub data: Vec<u8>,
    /// The replies' bytes, in request order.
    pub replies: Vec<u8>,
    /// Where each reply ends in `replies`.
    pub reply_ends: Vec<usize>,
}

impl Batch {
    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.records.clear();
        self.data.clear();
        self.replies.clear();
        self.reply_ends.clear();
    }

    /// Each record with its reply, once the owner has answered.
    pub fn answered(&self) -> impl Iterator<Item = (&Record, &[u8])> {
        let starts = std::iter::once(0).chain(self.reply_ends.iter().copied());
        self.records
            .iter()
            .zip(starts.zip(self.reply_ends.iter().copied()))
            .map(|(record, (start, end))| (record, &self.replies[start..end]))
    }
}

/// What one worker sends another.
#[derive(Debug)]
pub enum Message {
    /// A connection accepted by the acceptor, for this worker to serve, with its peer.
    Connection(Stream, Endpoint),
    /// Requests to run against this worker's shard.
    Requests(Batch),
    /// Replies to requests this worker sent.
    Replies(Batch),
}

/// A worker's inbox, and the means to wake it when it is parked.
#[derive(Debug)]
pub struct Mailbox {
    tx: Sender<Message>,
    rx: Receiver<Message>,
    waker: Waker,
    parked: AtomicBool,
}

impl Mailbox {
    /// An empty mailbox that wakes its worker through `waker`.
    pub fn new(waker: Waker) -> Mailbox {
        let (tx, rx) = channel::unbounded();
        Mailbox {
            tx,
            rx,
            waker,
            parked: AtomicBool::new(false),
        }
    }

    /// Delivers a message, waking the worker only if it is parked.
    pub fn send(&self, message: Message) {
        self.tx
            .send(message)
            .expect("a mailbox holds its own receiver, so it is never disconnected");
        if self.parked.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the worker whether or not it is parked (for shutdown).
    pub fn wake(&self) {
        if let Err(err) = self.waker.wake() {
            tracing::warn!(cause = %err, "cannot wake a worker");
        }
    }

    /// Marks the worker parked; answers whether it may block (nothing is waiting).
    pub fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        self.rx.is_empty()
    }

    /// Marks the worker running.
    pub fn unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    /// The next waiting message, if any.
    pub fn try_recv(&self) -> Option<Message> {
        self.rx.try_recv().ok()
    }
}

/// Empty batches a worker keeps for reuse.
const SPARE_BATCHES: usize = 16;
/// A batch whose buffers grew past this is dropped rather than kept for reuse.
const SPARE_BYTES: usize = 256 * 1024;

/// The batches a worker is filling during one turn, one per other worker, and the empty
/// batches that came back, kept for reuse.
#[derive(Debug)]
pub struct Forwarder {
    me: usize,
    filling: Vec<Option<Batch>>,
    spare: Vec<Batch>,
}

impl Forwarder {
    /// A forwarder for worker `me` of `workers`.
    pub fn new(me: usize, workers: usize) -> Forwarder {
        Forwarder {
            me,
            filling: (0..workers).map(|_| None).collect(),
            spare: Vec::new(),
        }
    }

    /// Adds a request for worker `target`.
    pub fn push(&mut self, target: usize, conn: ConnId, kind: RecordKind, bytes: &[u8]) {
        let spare = &mut self.spare;
        let me = self.me;
        let batch = self.filling[target].get_or_insert_with(|| {
            let mut batch = spare.pop().unwrap_or_default();
            batch.origin = me;
            batch.target = target;
            batch
        });
        let start = batch.data.len();
        batch.data.extend_from_slice(bytes);
        let range = start..batch.data.len();
        batch.records.push(Record { conn, kind, range });
    }

    /// Sends every batch filled this turn; returns (batches, requests) sent.
    pub fn flush(&mut self, mailboxes: &[Mailbox]) -> (u64, u64) {
        let mut sent = (0, 0);
        for (target, slot) in self.filling.iter_mut().enumerate() {
            if let Some(batch) = slot.take() {
                sent.0 += 1;
                sent.1 += batch.records.len() as u64;
                mailboxes[target].send(Message::Requests(batch));
            }
        }
        sent
    }

    /// Keeps an answered batch's buffers for the next one, unless enough are kept or
    /// they grew large (a batch of large values): idle workers should hold little.
    pub fn recycle(&mut self, mut batch: Batch) {
        let large = batch.data.capacity().max(batch.replies.capacity()) > SPARE_BYTES;
        if large || self.spare.len() >= SPARE_BATCHES {
            return;
        }
        batch.clear();
        self.spare.push(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_cover_every_worker_evenly() {
        let hasher = crate::storage::KeyHasher::with_seed(7);
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            let key = format!("key:{i}");
            counts[owner(hasher.hash(key.as_bytes()), 4)] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
        assert_eq!(owner(u64::MAX, 3), 2);
        assert_eq!(owner(0, 3), 0);
    }

    #[test]
    fn replies_pair_with_their_records() {
        let mut forwarder = Forwarder::new(0, 2);
        let conn = ConnId {
            slot: 3,
            generation: 1,
        };
        forwarder.push(1, conn, RecordKind::Text, b"delete a\r\n");
        forwarder.push(1, conn, RecordKind::TextGet(GetKind::Get), b"b");
        let mut batch = forwarder.filling[1].take().unwrap();
        assert_eq!(&batch.data[batch.records[1].range.clone()], b"b");
        batch.replies.extend_from_slice(b"DELETED\r\n");
        batch.reply_ends.push(batch.replies.len());
        batch.reply_ends.push(batch.replies.len());
        let replies: Vec<&[u8]> = batch.answered().map(|(_, r)| r).collect();
        assert_eq!(replies, vec![&b"DELETED\r\n"[..], b""]);
        forwarder.recycle(batch);
        assert_eq!(forwarder.spare.len(), 1);
    }
}
