//! The flag pass every keyed meta command shares, as memcached's `_meta_flag_preparse`
//! runs it: each flag's first byte names it, a letter may appear once, an unknown letter
//! stops the pass, and a bad token is noted while the pass goes on, so that the last bad
//! token names the error. It fills [`MetaArgs`] and knows nothing of the commands beyond
//! the letters each may return.

use super::{KeyRoom, MetaArgs, MetaKey, Options, ReturnFlag, Returns, Step as Ordered, Steps};
use crate::protocol::error::ErrorReply;
use crate::protocol::number::{parse_i32_wrapping, parse_u32_wrapping, parse_u64};

/// Runs the shared flag pass over `flags`, keeping the returned flags whose letters are
/// in `returnable`. Answers the arguments and the raw `M` letter.
pub(super) fn read_flags<'a>(
    key: &'a [u8],
    flags: &[&'a [u8]],
    returnable: &[u8],
) -> Result<(MetaArgs<'a>, Option<u8>), ErrorReply> {
    let mut pass = FlagPass::new(key);
    for token in flags {
        pass.take(token, returnable)?;
    }
    match pass.error {
        Some(reply) => Err(reply),
        None => Ok((pass.args, pass.mode)),
    }
}

/// What one flag did to the pass.
enum Step {
    /// Taken.
    Accept,
    /// A bad token: the pass goes on, and this becomes the message unless a later
    /// flag's replaces it.
    Note(ErrorReply),
    /// A bad token that leaves the message as it is (memcached's `F`).
    NoteQuietly,
    /// Stop the pass with this error.
    Refuse(ErrorReply),
}

/// memcached's `_meta_flag_preparse`: an unknown or repeated letter stops it at once,
/// while a bad token is noted and the pass goes on, the last note giving the message.
struct FlagPass<'a> {
    args: MetaArgs<'a>,
    mode: Option<u8>,
    seen: u128,
    error: Option<ErrorReply>,
}

impl<'a> FlagPass<'a> {
    fn new(key: &'a [u8]) -> FlagPass<'a> {
        FlagPass {
            args: MetaArgs {
                key: MetaKey::Text(key),
                opaque: None,
                returns: Returns::NONE,
                steps: Steps::NONE,
                options: Options::default(),
            },
            mode: None,
            seen: 0,
            error: None,
        }
    }

    fn take(&mut self, token: &'a [u8], returnable: &[u8]) -> Result<(), ErrorReply> {
        let Some((&letter, arg)) = token.split_first() else {
            return Ok(());
        };
        self.mark(letter)?;
        let returned = ReturnFlag::from_letter(letter).filter(|_| returnable.contains(&letter));
        if let Some(flag) = returned {
            self.args.returns.push(flag);
        }
        if let Some(step) = Ordered::from_letter(letter) {
            self.args.steps.push(step);
        }
        match self.apply(letter, arg) {
            Step::Accept => {}
            Step::Note(reply) => self.error = Some(reply),
            Step::NoteQuietly => {
                self.error.get_or_insert(ErrorReply::BadFormat);
            }
            Step::Refuse(reply) => return Err(reply),
        }
        Ok(())
    }

    /// memcached refuses a repeated letter, and any byte of 127 or more, as a duplicate.
    fn mark(&mut self, letter: u8) -> Result<(), ErrorReply> {
        if letter >= 127 || self.seen & (1u128 << letter) != 0 {
            return Err(ErrorReply::MetaDuplicateFlag);
        }
        self.seen |= 1u128 << letter;
        Ok(())
    }

    fn apply(&mut self, letter: u8, arg: &'a [u8]) -> Step {
        match letter {
            b'b' => self.decode_key(),
            b'N' | b'T' | b'R' => self.exptime(letter, arg),
            b'C' | b'E' | b'D' | b'J' => self.number(letter, arg),
            b'F' => store(parse_u32_wrapping(arg), &mut self.args.options.client_flags)
                .unwrap_or(Step::NoteQuietly),
            b'M' => self.mode(arg),
            b'O' => {
                self.args.opaque = Some(arg);
                Step::Accept
            }
            _ => self.switch(letter),
        }
    }

    /// The 64-bit numbers, each with memcached's message for a bad one.
    fn number(&mut self, letter: u8, arg: &[u8]) -> Step {
        let options = &mut self.args.options;
        let (slot, reply) = match letter {
            b'C' => (&mut options.compare_cas, ErrorReply::MetaBadToken),
            b'E' => (&mut options.new_cas, ErrorReply::MetaBadToken),
            b'D' => (&mut options.delta, ErrorReply::MetaInvalidDelta),
            _ => (&mut options.initial, ErrorReply::MetaInvalidInitial),
        };
        note(parse_u64(arg), slot, reply)
    }

    /// The flags that carry no token.
    fn switch(&mut self, letter: u8) -> Step {
        let options = &mut self.args.options;
        match letter {
            b'v' => options.value = true,
            b'q' => options.quiet = true,
            b'u' => options.no_bump = true,
            b'I' => options.invalidate = true,
            b'x' => options.remove_value = true,
            b'k' | b's' | b't' | b'c' | b'f' | b'l' | b'h' | b'P' | b'L' => {}
            _ => return Step::Refuse(ErrorReply::MetaInvalidFlag),
        }
        Step::Accept
    }

    fn decode_key(&mut self) -> Step {
        let MetaKey::Text(text) = self.args.key else {
            return Step::Accept;
        };
        match KeyRoom::new().decode(text) {
            Some(_) => {
                self.args.key = MetaKey::Base64(text);
                Step::Accept
            }
            None => Step::Note(ErrorReply::MetaKeyDecoding),
        }
    }

    fn exptime(&mut self, letter: u8, arg: &[u8]) -> Step {
        let options = &mut self.args.options;
        let slot = match letter {
            b'N' => &mut options.vivify,
            b'T' => &mut options.ttl,
            _ => &mut options.recache,
        };
        note(parse_i32_wrapping(arg), slot, ErrorReply::MetaBadToken)
    }

    /// memcached 1.6.18 wants exactly one letter after `M`.
    fn mode(&mut self, arg: &[u8]) -> Step {
        match arg {
            &[mode] => {
                self.mode = Some(mode);
                Step::Accept
            }
            _ => Step::Note(ErrorReply::MetaModeLength),
        }
    }
}

/// Stores a parsed number; `None` when it did not parse.
fn store<T>(value: Option<T>, slot: &mut Option<T>) -> Option<Step> {
    *slot = Some(value?);
    Some(Step::Accept)
}

/// Stores a parsed number, or notes `reply` when it did not parse.
fn note<T>(value: Option<T>, slot: &mut Option<T>, reply: ErrorReply) -> Step {
    store(value, slot).unwrap_or(Step::Note(reply))
}
