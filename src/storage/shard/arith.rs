//! `incr` and `decr`: reading a stored decimal number as C's `strtoull` would, and
//! writing the result back in place when it fits, as memcached does.

use super::write::Meta;
use super::{Arith, ArithOutcome, Initial, Shard};
use crate::storage::arena::NIL;
use crate::storage::index::Key;
use crate::storage::item::{CHAINED, HEADER_SIZE};
use crate::storage::stats;

impl Shard {
    /// Runs an increment or decrement (after [`Shard::begin`]).
    pub(super) fn arith_item(&mut self, key: Key<'_>, arith: Arith) -> ArithOutcome {
        match (self.find_live(key), arith.initial) {
            // SAFETY: `r` is a live item head from the index (the invariant).
            (Ok(r), _) => unsafe {
                debug_assert!(self.chunks.holds(r));
                self.apply(r, key, arith)
            },
            (Err(_), Some(initial)) => self.create_number(key, initial),
            (Err(_), None) => ArithOutcome::NotFound,
        }
    }

    /// Applies `arith` to live item `r`.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard with `key`.
    unsafe fn apply(&mut self, r: u32, key: Key<'_>, arith: Arith) -> ArithOutcome {
        let current = match self.number_in(r, arith.cas) {
            Ok(current) => current,
            Err(outcome) => return outcome,
        };
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
        let (meta, vlen) = self.meta_of(r);
        if digits.len() > vlen {
            return self.store_number(key, next, meta, r);
        }
        self.overwrite_number(r, digits);
        let cas = self.visible_cas(r);
        ArithOutcome::Value { value: next, cas }
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
        if (*h).bits & CHAINED != 0 || vlen == 0 {
            return Err(ArithOutcome::NonNumeric);
        }
        if cas != 0 && cas != self.visible_cas(r) {
            return Err(ArithOutcome::Exists);
        }
        let value = self.mem.ptr(r).add(HEADER_SIZE + usize::from((*h).klen));
        parse_u64(std::slice::from_raw_parts(value, vlen)).ok_or(ArithOutcome::NonNumeric)
    }

    /// Writes `digits` over item `r`'s value, padded with spaces to its length, as
    /// memcached does, and gives the item a new CAS and an LRU bump.
    ///
    /// # Safety
    ///
    /// `r` is a linked, unchained item head of this shard whose value is at least
    /// `digits.len()` bytes.
    unsafe fn overwrite_number(&mut self, r: u32, digits: &[u8]) {
        let h = self.mem.hdr(r);
        let vlen = (*h).vlen as usize;
        let value = self.mem.ptr(r).add(HEADER_SIZE + usize::from((*h).klen));
        std::ptr::copy_nonoverlapping(digits.as_ptr(), value, digits.len());
        std::ptr::write_bytes(value.add(digits.len()), b' ', vlen - digits.len());
        (*h).cas = self.take_cas();
        self.bump(r);
    }

    /// Creates the item a miss with an initial value asks for.
    fn create_number(&mut self, key: Key<'_>, initial: Initial) -> ArithOutcome {
        let meta = Meta {
            flags: initial.flags,
            exptime: initial.exptime,
        };
        // SAFETY: there is no old item to replace.
        debug_assert!(self.pinned == NIL);
        unsafe { self.store_number(key, initial.value, meta, NIL) }
    }

    /// Stores `number` in decimal as a new item replacing `old` (or NIL).
    ///
    /// # Safety
    ///
    /// As for [`Shard::create`].
    unsafe fn store_number(
        &mut self,
        key: Key<'_>,
        number: u64,
        meta: Meta,
        old: u32,
    ) -> ArithOutcome {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(number).as_bytes();
        let Some(plan) = self.plan(key.bytes.len(), digits.len(), meta.flags) else {
            return ArithOutcome::NoMemory;
        };
        match self.create(&plan, key, meta, digits.len(), old, |w| w.write(digits)) {
            Some(cas) => ArithOutcome::Value { value: number, cas },
            None => ArithOutcome::NoMemory,
        }
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
