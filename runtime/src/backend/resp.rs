//! RESP (redis's protocol, version 2) over pooled tokio connections ([`super::pool`]): what
//! [`super::redis`] talks to a single server with. Redis answers a pipeline in the order it
//! was sent.
//!
//! Answers are read in place: a bulk string is a slice of the read buffer and an array an
//! iterator over its items, so an `MGET` of 100 keys allocates nothing but the values the
//! caller keeps. Why not the `redis` crate for this: `docs/performance.md`, "The redis client".

use super::pool::{self, Failure, Greeting, Request, Wire, push_u64};

/// The connections to one redis server.
pub(super) type Pool = pool::Pool<Resp>;

/// Deepest nesting of arrays accepted in an answer (the scripts answer flat arrays).
const MAX_DEPTH: usize = 4;

/// RESP answers, for [`pool::Pool`].
pub(super) struct Resp;

/// One answer.
#[derive(Debug)]
pub(super) enum Reply<'b> {
    /// `+…`: a status such as `OK`.
    Status(&'b [u8]),
    /// `-…`: the server refused the command (the message, such as `NOSCRIPT …`).
    Error(&'b [u8]),
    /// `:…`: an integer.
    Int(i64),
    /// `$…`: a bulk string, `None` for the null bulk string (a missing key).
    Bulk(Option<&'b [u8]>),
    /// `*…`: an array, `None` for the null array.
    Array(Option<Items<'b>>),
}

/// The items of an array answer, read one by one.
#[derive(Debug)]
pub(super) struct Items<'b> {
    /// The encoded items not read yet.
    rest: &'b [u8],
    /// How many items `rest` holds.
    left: usize,
}

impl Items<'_> {
    /// How many items are left.
    pub(super) fn len(&self) -> usize {
        self.left
    }

    /// Bytes of the items left, as encoded: more than their values hold together.
    pub(super) fn encoded_len(&self) -> usize {
        self.rest.len()
    }
}

impl<'b> Iterator for Items<'b> {
    type Item = Result<Reply<'b>, Failure>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.item())
    }
}

impl<'b> Items<'b> {
    /// The next item, and `rest` moved past it.
    fn item(&mut self) -> Result<Reply<'b>, Failure> {
        let (mut item, mut end) = parse(self.rest)?;
        if let Reply::Array(_) = item {
            // A nested array (never in this client's answers): find where it ends.
            end = scan(self.rest, 0)?.ok_or_else(|| Failure::Protocol("an array item cut short".into()))?;
            item = parse(self.rest.get(..end).unwrap_or_default())?.0;
        }
        self.rest = self.rest.get(end..).unwrap_or_default();
        Ok(item)
    }
}

impl Wire for Resp {
    /// Nothing: an answer's header says what it is.
    type Frame = ();
    type Reply<'b> = Reply<'b>;

    fn frame(buffered: &[u8]) -> Result<Option<((), usize)>, Failure> {
        Ok(scan(buffered, 0)?.map(|end| ((), end)))
    }

    fn reply(buffered: &[u8], (): ()) -> Result<Reply<'_>, Failure> {
        parse(buffered).map(|(reply, _)| reply)
    }
}

/// The RESP commands.
impl Request<'_> {
    /// Starts a command of `args` arguments (its name included); the arguments follow with
    /// [`Request::bulk`] and [`Request::bulk_u64`].
    pub(super) fn array(&mut self, args: usize) {
        self.commands += 1;
        self.buffer.push(b'*');
        push_u64(self.buffer, args as u64);
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// One argument.
    pub(super) fn bulk(&mut self, bytes: &[u8]) {
        self.buffer.push(b'$');
        push_u64(self.buffer, bytes.len() as u64);
        self.buffer.extend_from_slice(b"\r\n");
        self.buffer.extend_from_slice(bytes);
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// One argument, a number in decimal.
    pub(super) fn bulk_u64(&mut self, number: u64) {
        let digits = number.checked_ilog10().unwrap_or(0) + 1;
        self.buffer.push(b'$');
        push_u64(self.buffer, u64::from(digits));
        self.buffer.extend_from_slice(b"\r\n");
        push_u64(self.buffer, number);
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// One whole command: `args`, the name first.
    pub(super) fn command(&mut self, args: &[&[u8]]) {
        self.array(args.len());
        for arg in args {
            self.bulk(arg);
        }
    }
}

/// What a new connection sends first: `AUTH [user] password` if a password is given,
/// `SELECT db` unless the database is 0. `None` if neither.
pub(super) fn greeting(user: Option<&str>, password: Option<&str>, db: i64) -> Option<Greeting<Resp>> {
    let mut request = Vec::new();
    let mut commands = Request {
        buffer: &mut request,
        commands: 0,
    };
    if let Some(password) = password {
        match user {
            Some(user) => commands.command(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
            None => commands.command(&[b"AUTH", password.as_bytes()]),
        }
    }
    if db != 0 {
        commands.command(&[b"SELECT", db.to_string().as_bytes()]);
    }
    let commands = commands.commands;
    (commands > 0).then_some(Greeting {
        request,
        commands,
        check: |reply| match reply {
            Reply::Status(b"OK") => Ok(()),
            Reply::Error(message) => Err(Failure::Server(String::from_utf8_lossy(message).into_owned())),
            other => Err(Failure::Protocol(format!("AUTH/SELECT answered {other:?}"))),
        },
    })
}

/// The line at the start of `buffered` (without `\r\n`) and where the next byte lies, if it is
/// complete.
fn line(buffered: &[u8]) -> Result<Option<(&[u8], usize)>, Failure> {
    let Some(newline) = buffered.iter().position(|&byte| byte == b'\n') else {
        return Ok(None);
    };
    if newline == 0 || buffered[newline - 1] != b'\r' {
        return Err(Failure::Protocol("an answer line without \\r\\n".into()));
    }
    Ok(Some((&buffered[..newline - 1], newline + 1)))
}

/// A length or integer: decimal digits, or `-` and digits (at most 18: every number this
/// client reads is far smaller, and 18 digits cannot overflow).
fn number(text: &[u8]) -> Result<i64, Failure> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let not_a_number = || Failure::Protocol(format!("`{}` is not a number", String::from_utf8_lossy(text)));
    if digits.is_empty() || digits.len() > 18 {
        return Err(not_a_number());
    }
    let mut number: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(not_a_number());
        }
        number = number * 10 + i64::from(digit);
    }
    Ok(if negative { -number } else { number })
}

/// A length of a bulk string or an array: `None` for `-1` (null).
fn length(digits: &[u8]) -> Result<Option<usize>, Failure> {
    match number(digits)? {
        -1 => Ok(None),
        length => usize::try_from(length)
            .map(Some)
            .map_err(|_| Failure::Protocol(format!("a length of {length}"))),
    }
}

/// Where the answer at the start of `buffered` ends, if it is complete; `depth` is how deep
/// in arrays it lies.
fn scan(buffered: &[u8], depth: usize) -> Result<Option<usize>, Failure> {
    let Some((header, mut end)) = line(buffered)? else {
        return Ok(None);
    };
    match header.first() {
        Some(b'+' | b'-' | b':') => Ok(Some(end)),
        Some(b'$') => match length(&header[1..])? {
            None => Ok(Some(end)),
            Some(length) => {
                let value_end = end + length;
                if buffered.len() < value_end + 2 {
                    return Ok(None);
                }
                if &buffered[value_end..value_end + 2] != b"\r\n" {
                    return Err(Failure::Protocol("a bulk string not followed by \\r\\n".into()));
                }
                Ok(Some(value_end + 2))
            }
        },
        Some(b'*') => {
            if depth == MAX_DEPTH {
                return Err(Failure::Protocol("arrays nested too deep".into()));
            }
            for _ in 0..length(&header[1..])?.unwrap_or(0) {
                match scan(&buffered[end..], depth + 1)? {
                    Some(item) => end += item,
                    None => return Ok(None),
                }
            }
            Ok(Some(end))
        }
        _ => Err(Failure::Protocol(format!(
            "unexpected answer {:?}",
            String::from_utf8_lossy(&header[..header.len().min(80)])
        ))),
    }
}

/// The answer at the start of `encoded`, which [`scan`] found complete, and where it ends;
/// an array's items are taken to run to the end of `encoded` (and it is said to end where its
/// header does).
fn parse(encoded: &[u8]) -> Result<(Reply<'_>, usize), Failure> {
    let cut_short = || Failure::Protocol("an answer cut short".into());
    let (header, start) = line(encoded)?.ok_or_else(cut_short)?;
    let body = &header[1..];
    match header.first() {
        Some(b'+') => Ok((Reply::Status(body), start)),
        Some(b'-') => Ok((Reply::Error(body), start)),
        Some(b':') => Ok((Reply::Int(number(body)?), start)),
        Some(b'$') => match length(body)? {
            None => Ok((Reply::Bulk(None), start)),
            Some(length) => {
                let value = encoded.get(start..start + length).ok_or_else(cut_short)?;
                Ok((Reply::Bulk(Some(value)), start + length + 2))
            }
        },
        Some(b'*') => {
            let items = length(body)?.map(|left| Items {
                rest: &encoded[start..],
                left,
            });
            Ok((Reply::Array(items), start))
        }
        _ => Err(Failure::Protocol("unexpected answer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answers `encoded` holds, each with how many bytes it took.
    fn frames(encoded: &[u8]) -> Vec<usize> {
        let mut at = 0;
        let mut lengths = Vec::new();
        while let Some(((), length)) = Resp::frame(&encoded[at..]).unwrap() {
            lengths.push(length);
            at += length;
        }
        lengths
    }

    #[test]
    fn answers_are_framed_and_parsed() {
        let encoded = b"+OK\r\n-NOSCRIPT No matching script\r\n:-12\r\n$3\r\na\r\n\r\n$-1\r\n*3\r\n:1\r\n$-1\r\n*1\r\n$0\r\n\r\n*-1\r\n";
        assert_eq!(frames(encoded), [5, 30, 6, 9, 5, 23, 5]);
        assert!(matches!(parse(b"+OK\r\n").unwrap().0, Reply::Status(b"OK")));
        assert!(matches!(
            parse(b"-NOSCRIPT x\r\n").unwrap().0,
            Reply::Error(b"NOSCRIPT x")
        ));
        assert!(matches!(parse(b":-12\r\n").unwrap().0, Reply::Int(-12)));
        assert!(matches!(
            parse(b"$3\r\na\r\n\r\n").unwrap().0,
            Reply::Bulk(Some(b"a\r\n"))
        ));
        assert!(matches!(parse(b"$-1\r\n").unwrap().0, Reply::Bulk(None)));
        assert!(matches!(parse(b"*-1\r\n").unwrap().0, Reply::Array(None)));
        let Reply::Array(Some(items)) = parse(b"*3\r\n:1\r\n$-1\r\n*1\r\n$0\r\n\r\n").unwrap().0 else {
            panic!("an array");
        };
        assert_eq!(items.len(), 3);
        let items: Vec<Reply<'_>> = items.collect::<Result<_, _>>().unwrap();
        assert!(matches!(
            items[..],
            [Reply::Int(1), Reply::Bulk(None), Reply::Array(Some(_))]
        ));
    }

    #[test]
    fn incomplete_answers_wait_for_more() {
        for cut in [
            &b"+O"[..],
            b"$3\r\nab",
            b"$3\r\nabc\r",
            b"*2\r\n:1\r\n",
            b"*2\r\n:1\r\n$1\r\n",
        ] {
            assert!(Resp::frame(cut).unwrap().is_none(), "{cut:?}");
        }
    }

    #[test]
    fn malformed_answers_are_refused() {
        for bad in [
            &b"!3\r\n"[..],
            b"+OK\n",
            b"$x\r\n",
            b"$-2\r\n",
            b"$1\r\nab\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            assert!(Resp::frame(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn commands_are_encoded() {
        let mut buffer = Vec::new();
        let mut request = Request {
            buffer: &mut buffer,
            commands: 0,
        };
        request.command(&[b"GET", b"k"]);
        request.array(3);
        request.bulk(b"SET");
        request.bulk(b"");
        request.bulk_u64(1500);
        assert_eq!(request.commands, 2);
        assert_eq!(
            buffer,
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n1500\r\n"
        );
        let greeted = greeting(Some("u"), Some("p"), 2).unwrap();
        assert_eq!(greeted.commands, 2);
        assert_eq!(
            greeted.request,
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
        );
        assert!(greeting(None, None, 0).is_none());
    }
}
