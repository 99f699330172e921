//! `incr` and `decr`: reading a stored decimal number as C's `strtoull` would, and
//! writing the result back in place when it fits, as memcached does.

use super::write::Attrs;
use super::{Arith, ArithOutcome, Initial, Shard};
use crate::storage::arena::NIL;
use crate::storage::index::Key;
use crate::storage::item::{CHAINED, HEADER_SIZE};
use crate::storage::stats;

/// What a meta command adds to the item an increment or decrement writes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Extra {
    /// The CAS to give it (`E`); `None` takes the next one.
    pub(super) cas: Option<u64>,
    /// Item bits for an item it creates (the base64 mark).
    pub(super) marks: u16,
}

/// An increment or decrement that went through.
#[derive(Clone, Copy, Debug)]
pub(super) struct Counted {
    /// The counter after the operation.
    pub(super) value: u64,
    /// The item that holds it now.
    pub(super) r: u32,
    /// Whether the item was created from the initial value.
    pub(super) created: bool,
}

impl Shard {
    /// Runs an increment or decrement (after [`Shard::begin`]).
    pub(super) fn arith_item(&mut self, key: Key<'_>, arith: Arith) -> ArithOutcome {
        match self.count(key, arith, Extra::default()) {
            // SAFETY: `done.r` is the item just written, linked in the index.
            Ok(done) => unsafe {
                debug_assert!(self.chunks.holds(done.r));
                let cas = self.visible_cas(done.r);
                ArithOutcome::Value {
                    value: done.value,
                    cas,
                }
            },
            Err(outcome) => outcome,
        }
    }

    /// Runs an increment or decrement whose item gets `extra` (after [`Shard::begin`]).
    pub(super) fn count(
        &mut self,
        key: Key<'_>,
        arith: Arith,
        extra: Extra,
    ) -> Result<Counted, ArithOutcome> {
        let extra = Extra {
            cas: self.explicit_cas(extra.cas),
            ..extra
        };
        match (self.find_live(key), arith.initial) {
            // SAFETY: `r` is a live item head from the index (the invariant).
            (Ok(r), _) => unsafe {
                debug_assert!(self.chunks.holds(r));
                self.apply(r, key, arith, extra)
            },
            (Err(_), Some(initial)) => self.create_number(key, initial, extra),
            (Err(_), None) => Err(ArithOutcome::NotFound),
        }
    }

    /// Applies `arith` to live item `r`.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard with `key`.
    unsafe fn apply(
        &mut self,
        r: u32,
        key: Key<'_>,
        arith: Arith,
        extra: Extra,
    ) -> Result<Counted, ArithOutcome> {
        let current = self.number_in(r, arith.cas)?;
        let class = self.stats.class(self.lru_class(r));
        let next = if arith.incr {
            stats::add(&class.incr_hits, 1);
            current.wrapping_add(arith.delta)
        } else {
            stats::add(&class.decr_hits, 1);
            current.saturating_sub(arith.delta)
        };
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(next).as_bytes();
        let (attrs, vlen) = self.attrs_at(r);
        let r = if digits.len() > vlen {
            let attrs = Attrs {
                cas: extra.cas,
                ..attrs
            };
            self.store_number(key, next, attrs, r)?
        } else {
            self.overwrite_number(r, digits, extra.cas);
            r
        };
        Ok(Counted {
            value: next,
            r,
            created: false,
        })
    }

    /// The number item `r` holds, or why arithmetic cannot apply: a chained or empty
    /// value, a CAS other than a non-zero `cas`, or no number.
    ///
    /// # Safety
    ///
    /// `r` is a live item head of this shard.
    unsafe fn number_in(&self, r: u32, cas: u64) -> Result<u64, ArithOutcome> {
        let h = self.mem.hdr(r);
        let vlen = (*h).vlen as usize;
        if (*h).bits() & CHAINED != 0 || vlen == 0 {
            return Err(ArithOutcome::NonNumeric);
        }
        if cas != 0 && cas != self.visible_cas(r) {
            return Err(ArithOutcome::Exists);
        }
        let value = self.mem.ptr(r).add(HEADER_SIZE + usize::from((*h).klen));
        parse_u64(std::slice::from_raw_parts(value, vlen)).ok_or(ArithOutcome::NonNumeric)
    }

    /// Writes `digits` over item `r`'s value, padded with spaces to its length, as
    /// memcached does, and gives the item a new CAS (`cas`, or the next one) and an LRU
    /// bump.
    ///
    /// # Safety
    ///
    /// `r` is a linked, unchained item head of this shard whose value is at least
    /// `digits.len()` bytes.
    unsafe fn overwrite_number(&mut self, r: u32, digits: &[u8], cas: Option<u64>) {
        let h = self.mem.hdr(r);
        let vlen = (*h).vlen as usize;
        let value = self.mem.ptr(r).add(HEADER_SIZE + usize::from((*h).klen));
        let cas = match cas {
            Some(cas) => cas,
            None => self.take_cas(),
        };
        // Readers on other workers drop what they read while the CAS is 0.
        (*h).retire();
        std::ptr::copy_nonoverlapping(digits.as_ptr(), value, digits.len());
        std::ptr::write_bytes(value.add(digits.len()), b' ', vlen - digits.len());
        (*h).set_cas(cas);
        self.bump(r);
    }

    /// Creates the item a miss with an initial value asks for.
    fn create_number(
        &mut self,
        key: Key<'_>,
        initial: Initial,
        extra: Extra,
    ) -> Result<Counted, ArithOutcome> {
        let attrs = Attrs {
            cas: extra.cas,
            marks: extra.marks,
            ..Attrs::plain(initial.flags, initial.exptime)
        };
        // SAFETY: there is no old item to replace.
        debug_assert!(self.pinned == NIL);
        let r = unsafe { self.store_number(key, initial.value, attrs, NIL)? };
        Ok(Counted {
            value: initial.value,
            r,
            created: true,
        })
    }

    /// Stores `number` in decimal as a new item replacing `old` (or NIL).
    ///
    /// # Safety
    ///
    /// As for [`Shard::create_item`].
    unsafe fn store_number(
        &mut self,
        key: Key<'_>,
        number: u64,
        attrs: Attrs,
        old: u32,
    ) -> Result<u32, ArithOutcome> {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(number).as_bytes();
        let plan = self
            .plan(key.bytes.len(), digits.len(), attrs.flags)
            .ok_or(ArithOutcome::NoMemory)?;
        self.create_item(&plan, key, attrs, digits.len(), old, |w| w.write(digits))
            .ok_or(ArithOutcome::NoMemory)
    }
}

/// C's `isspace` in the C locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A stored value read as memcached's `safe_strtoull` reads it: optional leading
/// whitespace, an optional sign, decimal digits, then whitespace or the end. Values
/// above `u64::MAX` are rejected, and so is a result above `i64::MAX` when the value
/// holds a `-` (so `-0` reads as 0 but `-1`, which wraps to `u64::MAX`, is no number).
pub(crate) fn parse_u64(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|&b| !is_space(b))?;
    let rest = &value[start..];
    let negative = rest.first() == Some(&b'-');
    let unsigned = rest
        .strip_prefix(b"-")
        .or_else(|| rest.strip_prefix(b"+"))
        .unwrap_or(rest);
    let digits = unsigned.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || unsigned.get(digits).is_some_and(|&b| !is_space(b)) {
        return None;
    }
    let magnitude = unsigned[..digits].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    let number = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    let signed_negative = (number as i64) < 0;
    (!(signed_negative && value.contains(&b'-'))).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::parse_u64;

    #[test]
    fn parses_like_strtoull() {
        assert_eq!(parse_u64(b"10"), Some(10));
        assert_eq!(parse_u64(b" 12"), Some(12));
        assert_eq!(parse_u64(b"12 "), Some(12));
        assert_eq!(parse_u64(b"99 "), Some(99));
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"000000000000000000001"), Some(1));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"-0"), Some(0));
    }

    #[test]
    fn rejects_what_strtoull_rejects() {
        for bad in [
            &b""[..],
            b"abc",
            b"12abc",
            b"-1",
            b"  ",
            b"+",
            b"18446744073709551616",
            b"- 1",
        ] {
            assert_eq!(parse_u64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
