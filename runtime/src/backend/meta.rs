//! memcached's meta protocol over pooled tokio connections ([`super::pool`]): what
//! [`super::memcached`] talks to one server with. memcached answers a pipeline in the order
//! it was sent, so no opaque tokens are needed.
//!
//! Why not the `memcache` crate's exp client: its owned builders and results, a probe per
//! checkout and `run_many`'s bookkeeping cost about 8 900 instructions per get and 12 900
//! per key of a batch over a raw socket; a repository hit through this connection costs
//! about 5 800 over it, a key of a 100-key `get_many` 1 600 (`docs/performance.md`, "Closing
//! the gaps" and "Fewer instructions per key and per hit").

use std::ops::Range;

use super::pool::{self, Request, Wire, push_u64};

pub(super) use super::pool::Failure;

/// The connections to one memcached server.
pub(super) type Pool = pool::Pool<Meta>;

/// The meta protocol's answers, for [`pool::Pool`].
pub(super) struct Meta;

impl Wire for Meta {
    /// Where the answer line ends (before `\r\n`) and where its value lies.
    type Frame = (usize, Option<Range<usize>>);
    type Reply<'b> = Reply<'b>;

    fn frame(buffered: &[u8]) -> Result<Option<(Self::Frame, usize)>, Failure> {
        let Some(newline) = buffered.iter().position(|&byte| byte == b'\n') else {
            return Ok(None);
        };
        if newline == 0 || buffered[newline - 1] != b'\r' {
            return Err(Failure::Protocol("an answer line without \\r\\n".into()));
        }
        let line_end = newline - 1;
        let Some(length) = buffered[..line_end].strip_prefix(b"VA ") else {
            return Ok(Some(((line_end, None), line_end + 2)));
        };
        let digits = length.split(|&byte| byte == b' ').next().unwrap_or_default();
        let length = parse_u64(digits)
            .and_then(|length| usize::try_from(length).ok())
            .ok_or_else(|| Failure::Protocol("a VA answer without a length".into()))?;
        let value = line_end + 2..line_end + 2 + length;
        if buffered.len() < value.end + 2 {
            return Ok(None);
        }
        if &buffered[value.end..value.end + 2] != b"\r\n" {
            return Err(Failure::Protocol("a value not followed by \\r\\n".into()));
        }
        let end = value.end + 2;
        Ok(Some(((line_end, Some(value)), end)))
    }

    fn reply(buffered: &[u8], (line_end, value): Self::Frame) -> Result<Reply<'_>, Failure> {
        reply(&buffered[..line_end], value.map(|range| &buffered[range]))
    }
}

/// One answer: its two-letter code (`VA`, `HD`, `EN`, `NS`, `EX`, `NF`, or `SE` for a
/// `SERVER_ERROR`), its flags and, for `VA`, the value.
pub(super) struct Reply<'b> {
    /// The answer's code.
    pub code: [u8; 2],
    /// The flags after the code (and after the length for `VA`), space-separated.
    flags: &'b [u8],
    /// The value of a `VA` answer.
    pub value: Option<&'b [u8]>,
}

impl Reply<'_> {
    /// The value of flag `name` (`c` → the digits after it), if it was returned.
    pub(super) fn flag(&self, name: u8) -> Option<&[u8]> {
        self.flags
            .split(|&byte| byte == b' ')
            .find(|token| token.first() == Some(&name))
            .map(|token| &token[1..])
    }

    /// The CAS value (`c` flag), if returned.
    pub(super) fn cas(&self) -> Option<u64> {
        self.flag(b'c').and_then(parse_u64)
    }

    /// What a lookup needs, in one pass over the flags: whether `W` (this caller won the
    /// lease) and `X` (the item is stale) were returned, and the CAS value.
    pub(super) fn lease_flags(&self) -> LeaseFlags {
        let mut found = LeaseFlags::default();
        for token in self.flags.split(|&byte| byte == b' ') {
            match token.split_first() {
                Some((b'W', _)) => found.won = true,
                Some((b'X', _)) => found.stale = true,
                Some((b'c', digits)) => found.cas = parse_u64(digits),
                _ => {}
            }
        }
        found
    }
}

/// The flags of a lookup's answer ([`Reply::lease_flags`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct LeaseFlags {
    /// `W`: this caller won the lease to fill the item.
    pub won: bool,
    /// `X`: the item is stale (invalidated).
    pub stale: bool,
    /// `c`: the item's CAS value.
    pub cas: Option<u64>,
}

/// The meta commands.
impl Request<'_> {
    /// `mg <key> v c N<lease>` for each key: the value and CAS, vivifying a miss for `lease`
    /// seconds. The flags are written once, then copied for each further key.
    pub(super) fn get_leased<'k>(&mut self, keys: impl IntoIterator<Item = &'k str>, lease: u32) {
        let mut flags: Option<Range<usize>> = None;
        for key in keys {
            self.start_command(b"mg ", key);
            match &flags {
                Some(written) => self.buffer.extend_from_within(written.clone()),
                None => {
                    let start = self.buffer.len();
                    self.buffer.extend_from_slice(b" v c N");
                    push_u64(self.buffer, u64::from(lease));
                    self.end();
                    flags = Some(start..self.buffer.len());
                }
            }
        }
    }

    /// `ms <key> <len> T<ttl> [C<cas>] [c]` and the value: a set, conditional on `cas`,
    /// returning the new CAS if `return_cas`.
    pub(super) fn set(&mut self, key: &str, value: &[u8], ttl: u32, cas: Option<u64>, return_cas: bool) {
        self.start_command(b"ms ", key);
        self.buffer.push(b' ');
        push_u64(self.buffer, value.len() as u64);
        self.buffer.extend_from_slice(b" T");
        push_u64(self.buffer, u64::from(ttl));
        if let Some(cas) = cas {
            self.buffer.extend_from_slice(b" C");
            push_u64(self.buffer, cas);
        }
        if return_cas {
            self.buffer.extend_from_slice(b" c");
        }
        self.end();
        self.buffer.extend_from_slice(value);
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// `md <key> [C<cas>]`: a delete, conditional on `cas`.
    pub(super) fn delete(&mut self, key: &str, cas: Option<u64>) {
        self.start_command(b"md ", key);
        if let Some(cas) = cas {
            self.buffer.extend_from_slice(b" C");
            push_u64(self.buffer, cas);
        }
        self.end();
    }

    fn start_command(&mut self, op: &[u8], key: &str) {
        self.commands += 1;
        self.buffer.extend_from_slice(op);
        self.buffer.extend_from_slice(key.as_bytes());
    }

    fn end(&mut self) {
        self.buffer.extend_from_slice(b"\r\n");
    }
}

/// Whether `key` can be sent as a meta-protocol key (1–250 printable ASCII bytes): a key
/// with a space or a line break would be read as several commands.
pub(super) fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= crate::key::MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The [`Reply`] of one answer line (and value).
fn reply<'b>(line: &'b [u8], value: Option<&'b [u8]>) -> Result<Reply<'b>, Failure> {
    if let Some(message) = line.strip_prefix(b"SERVER_ERROR") {
        // memcached reads (and drops) the value of a set it refuses: the stream stays in step.
        return Ok(Reply {
            code: *b"SE",
            flags: message,
            value: None,
        });
    }
    let code: [u8; 2] = match line.get(..2) {
        Some(code) if line.len() == 2 || line[2] == b' ' => [code[0], code[1]],
        _ => {
            return Err(Failure::Protocol(format!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            )));
        }
    };
    let mut flags = line.get(3..).unwrap_or_default();
    if value.is_some() {
        // Skip the length.
        flags = flags
            .iter()
            .position(|&byte| byte == b' ')
            .map_or(&[][..], |space| &flags[space + 1..]);
    }
    Ok(Reply { code, flags, value })
}

/// The number `digits` spell in decimal, if they are 1–20 ASCII digits and it fits.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |number, &byte| {
        byte.is_ascii_digit()
            .then(|| number.checked_mul(10)?.checked_add(u64::from(byte - b'0')))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read() {
        for number in [0, 7, 10, 12345, u64::MAX] {
            assert_eq!(parse_u64(number.to_string().as_bytes()), Some(number));
        }
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1x"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }

    #[test]
    fn answers_are_parsed() {
        let hit = reply(b"VA 3 c42 W", Some(b"abc")).unwrap();
        assert_eq!(
            (&hit.code, hit.cas(), hit.flag(b'W')),
            (b"VA", Some(42), Some(&b""[..]))
        );
        let stored = reply(b"HD c7", None).unwrap();
        assert_eq!((&stored.code, stored.cas(), stored.flag(b'Z')), (b"HD", Some(7), None));
        let flags = |line: &[u8]| reply(line, None).unwrap().lease_flags();
        assert_eq!(flags(b"EN"), LeaseFlags::default());
        let all = LeaseFlags {
            won: true,
            stale: true,
            cas: Some(42),
        };
        assert_eq!(flags(b"HD W c42 t-1 X Z"), all);
        assert_eq!(flags(b"HD c4x2").cas, None);
        assert_eq!(
            &reply(b"SERVER_ERROR object too large for cache", None).unwrap().code,
            b"SE"
        );
        assert_eq!(&reply(b"EN", None).unwrap().code, b"EN");
        assert!(reply(b"ERROR", None).is_err());
        assert!(reply(b"CLIENT_ERROR bad command line format", None).is_err());
    }

    #[test]
    fn requests_are_encoded() {
        let mut buffer = Vec::new();
        let mut request = Request {
            buffer: &mut buffer,
            commands: 0,
        };
        request.get_leased(["k"], 5);
        request.set("k", b"xy", 60, Some(9), false);
        request.set("k", b"L", 30, None, true);
        request.delete("k", Some(3));
        request.delete("k", None);
        assert_eq!(request.commands, 5);
        assert_eq!(
            buffer,
            b"mg k v c N5\r\nms k 2 T60 C9\r\nxy\r\nms k 1 T30 c\r\nL\r\nmd k C3\r\nmd k\r\n"
        );
        buffer.clear();
        let mut request = Request {
            buffer: &mut buffer,
            commands: 0,
        };
        request.get_leased(["a", "bb", "c"], 30);
        assert_eq!(request.commands, 3);
        assert_eq!(buffer, b"mg a v c N30\r\nmg bb v c N30\r\nmg c v c N30\r\n");
    }
}
