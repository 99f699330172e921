//! Numbers in command tokens, read the way memcached's `safe_strto*` helpers read them.
//!
//! Clients depend on the quirks: `+5` is 5, a 32-bit flag of 2^32 wraps to 0, an exptime
//! of 2^32+1 is truncated to 1, and a negative sign on an unsigned field is refused.
//! Tokens are split on spaces only, so a tab or `\r` next to a number is skipped as C's
//! `strtoull` skips it.

/// C's `isspace` in the "C" locale: what `strtoull` skips before a number and accepts
/// right after it.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits a token as `strtoull` reads it: leading space, sign, then the digits, which
/// must be followed by nothing or by a space character.
fn split_number(token: &[u8]) -> Option<(bool, &[u8])> {
    let start = token.iter().position(|&b| !is_c_space(b))?;
    let token = &token[start..];
    let (negative, rest) = match token.first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    if end == 0 || rest.get(end).is_some_and(|&b| !is_c_space(b)) {
        return None;
    }
    Some((negative, &rest[..end]))
}

fn digits_value(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |value, &b| {
        value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Reads an unsigned 64-bit decimal (memcached's `safe_strtoull`): `+` allowed, overflow
/// refused, and a `-` refused unless the number is zero.
pub fn parse_u64(token: &[u8]) -> Option<u64> {
    let (negative, digits) = split_number(token)?;
    let value = digits_value(digits)?;
    if negative && value != 0 {
        return None;
    }
    Some(value)
}

/// Reads a signed decimal as C's `strtoll` would, refusing overflow of `i64`.
pub fn parse_i64(token: &[u8]) -> Option<i64> {
    let (negative, digits) = split_number(token)?;
    let magnitude = digits_value(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Reads a 32-bit unsigned field (flags, verbosity, memory limit) as memcached's
/// `safe_strtoul`: a 64-bit parse truncated to 32 bits, with negative numbers refused.
pub fn parse_u32_wrapping(token: &[u8]) -> Option<u32> {
    parse_u64(token).map(|v| v as u32)
}

/// Reads a 32-bit signed field (exptime, length) as memcached's `safe_strtol`: a 64-bit
/// parse truncated to 32 bits.
pub fn parse_i32_wrapping(token: &[u8]) -> Option<i32> {
    parse_i64(token).map(|v| v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_accepts_plus_and_refuses_minus() {
        assert_eq!(parse_u64(b"+5"), Some(5));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+"), None);
        assert_eq!(parse_u64(b"1a"), None);
        assert_eq!(parse_u64(b"\t7"), Some(7));
        assert_eq!(parse_u64(b"7\r"), Some(7));
    }

    #[test]
    fn flags_wrap_at_32_bits() {
        assert_eq!(parse_u32_wrapping(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32_wrapping(b"4294967296"), Some(0));
        assert_eq!(parse_u32_wrapping(b"18446744073709551616"), None);
        assert_eq!(parse_u32_wrapping(b"-1"), None);
        assert_eq!(parse_u32_wrapping(b"-0"), Some(0));
    }

    #[test]
    fn signed_truncates_to_32_bits() {
        assert_eq!(parse_i32_wrapping(b"4294967297"), Some(1));
        assert_eq!(parse_i32_wrapping(b"-1"), Some(-1));
        assert_eq!(parse_i32_wrapping(b"+7"), Some(7));
        assert_eq!(parse_i32_wrapping(b"abc"), None);
        assert_eq!(parse_i32_wrapping(b"-"), None);
        assert_eq!(parse_i32_wrapping(b"-+1"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }
}
