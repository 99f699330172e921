//! SASL authentication for the binary protocol (`-S`), with the PLAIN mechanism and a
//! password file, as memcached's built-in password database offers it.
//!
//! Before a connection has authenticated, only the SASL opcodes and VERSION are served;
//! anything else is answered `Auth failure.` and the connection is closed, as memcached
//! does. Passwords are compared in constant time ([`PasswordDb::check`]) and never
//! logged.

use crate::config::PasswordDb;
use crate::protocol::binary::{self, Opcode, Packet, Response, Status};
use crate::stats::Stat;

use super::execute::{Exec, Flow};

/// The only mechanism offered.
const MECHANISM: &[u8] = b"PLAIN";

/// A connection's authentication state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Whether a SASL_AUTH succeeded on this connection.
    pub authenticated: bool,
}

impl Session {
    /// Whether `opcode` may run now: always without `-S`; with it, only the SASL
    /// opcodes and VERSION until the connection has authenticated.
    pub fn allows(&self, sasl: bool, opcode: Opcode) -> bool {
        !sasl
            || self.authenticated
            || matches!(
                opcode,
                Opcode::SaslListMechs | Opcode::SaslAuth | Opcode::SaslStep | Opcode::Version
            )
    }
}

/// SASL_LIST_MECHS, SASL_AUTH and SASL_STEP. Without `-S` they are unknown commands.
pub fn handle(
    ex: &mut Exec<'_>,
    packet: &Packet<'_>,
    session: &mut Session,
    out: &mut Vec<u8>,
) -> Flow {
    let (opcode, opaque) = (packet.opcode(), packet.opaque());
    let Some(db) = &ex.shared.config.sasl else {
        binary::error(out, opcode, Status::UnknownCommand, opaque);
        return Flow::Continue;
    };
    match opcode {
        Opcode::SaslListMechs => {
            let mut reply = Response::new(opcode, Status::NoError, opaque);
            reply.value = MECHANISM;
            binary::response(out, &reply);
        }
        Opcode::SaslAuth => authenticate(ex, db, packet, session, out),
        _ => binary::error(out, opcode, Status::AuthError, opaque),
    }
    Flow::Continue
}

fn authenticate(
    ex: &mut Exec<'_>,
    db: &PasswordDb,
    packet: &Packet<'_>,
    session: &mut Session,
    out: &mut Vec<u8>,
) {
    ex.counters.incr(Stat::auth_cmds);
    let ok = packet.key == MECHANISM
        && plain_credentials(packet.value).is_some_and(|(user, pass)| db.check(user, pass));
    let (opcode, opaque) = (packet.opcode(), packet.opaque());
    if !ok {
        ex.counters.incr(Stat::auth_errors);
        tracing::info!("SASL authentication failed");
        return binary::error(out, opcode, Status::AuthError, opaque);
    }
    session.authenticated = true;
    let mut reply = Response::new(opcode, Status::NoError, opaque);
    reply.value = b"Authenticated";
    binary::response(out, &reply);
}

/// The user and password of a PLAIN message: `authzid NUL user NUL password` (RFC 4616).
fn plain_credentials(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let _authzid = parts.next()?;
    Some((parts.next()?, parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_split_into_user_and_password() {
        assert_eq!(
            plain_credentials(b"\0alice\0secret"),
            Some((&b"alice"[..], &b"secret"[..]))
        );
        assert_eq!(
            plain_credentials(b"admin\0alice\0se\0cret"),
            Some((&b"alice"[..], &b"se\0cret"[..]))
        );
        assert_eq!(plain_credentials(b"alice"), None);
    }

    #[test]
    fn only_sasl_and_version_run_before_authentication() {
        let session = Session::default();
        assert!(session.allows(false, Opcode::Get));
        assert!(!session.allows(true, Opcode::Get));
        assert!(session.allows(true, Opcode::Version));
        assert!(session.allows(true, Opcode::SaslAuth));
        let done = Session {
            authenticated: true,
        };
        assert!(done.allows(true, Opcode::Set));
    }
}
