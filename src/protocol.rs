//! Decoder of the backend messages a worker sends through its queue (no `pg_sys` here).
//!
//! `libpq/pqmq.c` puts each message into the queue as its type byte followed by its body, without
//! the length word of the wire protocol; the bodies are those of the protocol chapter of the
//! PostgreSQL manual ("Message Formats").
#![forbid(unsafe_code)]

use std::fmt;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The queue delivered a zero-length message.
    Empty,
    /// The body ended in the middle of a field.
    Truncated { message: char },
    /// Bytes were left after the last field.
    TrailingBytes { message: char, count: usize },
    /// A field count or length was negative where it may not be.
    BadLength { message: char, value: i64 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty message"),
            DecodeError::Truncated { message } => write!(f, "truncated '{message}' message"),
            DecodeError::TrailingBytes { message, count } => {
                write!(
                    f,
                    "{count} unexpected bytes at the end of a '{message}' message"
                )
            }
            DecodeError::BadLength { message, value } => {
                write!(f, "invalid length {value} in a '{message}' message")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    pub name: &'a [u8],
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub type_len: i16,
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// Bytes between the type byte of a [`BackendMessage::Tuples`] and its first tuple: with the
/// type byte they fill eight, and a queue's messages start at MAXALIGN boundaries.
pub const TUPLE_PADDING: usize = 7;

/// Tuples follow each other at this alignment (MAXALIGN).
pub const TUPLE_ALIGN: usize = 8;

/// A backend message, named as in the protocol chapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// `T`
    RowDescription(Vec<FieldDescription<'a>>),
    /// `C`: the command tag, without its NUL.
    CommandComplete(&'a [u8]),
    /// `E`: the raw body, for `pq_parse_errornotice`; [`fields`] iterates it.
    ErrorResponse(&'a [u8]),
    /// `N`: as ErrorResponse.
    NoticeResponse(&'a [u8]),
    /// `Z`: transaction status byte.
    ReadyForQuery(u8),
    /// `G`
    CopyInResponse,
    /// `H`
    CopyOutResponse,
    /// `W`
    CopyBothResponse,
    /// `I`
    EmptyQueryResponse,
    /// `S`: name and value.
    ParameterStatus(&'a [u8], &'a [u8]),
    /// `A`: sender PID, channel, payload.
    NotificationResponse {
        pid: i32,
        channel: &'a [u8],
        payload: &'a [u8],
    },
    /// `M`, ours (PostgreSQL's protocol has no such backend message): rows as the worker's
    /// MinimalTuples, one after the other, each at a [`TUPLE_ALIGN`] boundary after
    /// [`TUPLE_PADDING`] bytes; [`tuples`] walks them.
    Tuples(&'a [u8]),
    /// Anything else: its type byte and body length.
    Unknown { tag: u8, len: usize },
}

/// Reads big-endian integers and NUL-terminated strings from a body.
struct Cursor<'a> {
    buf: &'a [u8],
    message: char,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], message: char) -> Self {
        Self { buf, message }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                message: self.message,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstr(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.buf.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &self.buf[..end];
                self.buf = &self.buf[end + 1..];
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                message: self.message,
            }),
        }
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                message: self.message,
                count: self.buf.len(),
            })
        }
    }
}

impl<'a> BackendMessage<'a> {
    /// Decode one queue message: type byte, then body.
    pub fn decode(message: &'a [u8]) -> Result<Self, DecodeError> {
        let (&tag, body) = message.split_first().ok_or(DecodeError::Empty)?;
        let mut c = Cursor::new(body, tag as char);
        let decoded = match tag {
            b'T' => {
                let count = c.i16()?;
                if count < 0 {
                    return Err(DecodeError::BadLength {
                        message: 'T',
                        value: count.into(),
                    });
                }
                let mut fields = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    fields.push(FieldDescription {
                        name: c.cstr()?,
                        table_oid: c.i32()? as u32,
                        column: c.i16()?,
                        type_oid: c.i32()? as u32,
                        type_len: c.i16()?,
                        type_modifier: c.i32()?,
                        format: c.i16()?,
                    });
                }
                BackendMessage::RowDescription(fields)
            }
            b'M' => {
                let tuples = body
                    .get(TUPLE_PADDING..)
                    .ok_or(DecodeError::Truncated { message: 'M' })?;
                // Validate the lengths now, so the reader only walks well-formed ones.
                for tuple in self::tuples(tuples) {
                    tuple?;
                }
                return Ok(BackendMessage::Tuples(tuples));
            }
            b'C' => BackendMessage::CommandComplete(c.cstr()?),
            b'E' | b'N' => {
                // Validate the field list now, so the parser in the server never reads past it.
                for field in fields(body) {
                    field?;
                }
                return Ok(if tag == b'E' {
                    BackendMessage::ErrorResponse(body)
                } else {
                    BackendMessage::NoticeResponse(body)
                });
            }
            b'Z' => BackendMessage::ReadyForQuery(c.u8()?),
            b'G' => return Ok(BackendMessage::CopyInResponse),
            b'H' => return Ok(BackendMessage::CopyOutResponse),
            b'W' => return Ok(BackendMessage::CopyBothResponse),
            b'I' => BackendMessage::EmptyQueryResponse,
            b'S' => BackendMessage::ParameterStatus(c.cstr()?, c.cstr()?),
            b'A' => BackendMessage::NotificationResponse {
                pid: c.i32()?,
                channel: c.cstr()?,
                payload: c.cstr()?,
            },
            other => {
                return Ok(BackendMessage::Unknown {
                    tag: other,
                    len: body.len(),
                })
            }
        };
        c.finish()?;
        Ok(decoded)
    }
}

/// The tuples of a [`BackendMessage::Tuples`] body. Each starts with its length `t_len` (four
/// bytes, native order), which must cover those four bytes and lie within the body; the next
/// tuple starts at the next [`TUPLE_ALIGN`] boundary.
pub fn tuples(body: &[u8]) -> impl Iterator<Item = Result<&[u8], DecodeError>> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= body.len() {
            return None;
        }
        let rest = &body[offset..];
        let t_len = rest
            .get(..4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize);
        match t_len {
            Some(len) if len >= 4 && len <= rest.len() => {
                offset += len.div_ceil(TUPLE_ALIGN) * TUPLE_ALIGN;
                Some(Ok(&rest[..len]))
            }
            _ => {
                offset = body.len();
                Some(Err(DecodeError::BadLength {
                    message: 'M',
                    value: t_len.map_or(-1, |l| l as i64),
                }))
            }
        }
    })
}

/// The fields of an ErrorResponse or NoticeResponse body: (field type, value), up to the
/// terminating zero byte.
pub fn fields(body: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8]), DecodeError>> + '_ {
    let mut c = Cursor::new(body, 'E');
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let item = (|| {
            let code = c.u8()?;
            if code == 0 {
                c.finish()?;
                return Ok(None);
            }
            Ok(Some((code, c.cstr()?)))
        })();
        match item {
            Ok(Some(field)) => Some(Ok(field)),
            Ok(None) => {
                done = true;
                None
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(body);
        v
    }

    fn row_description(cols: &[(&str, u32, i16)]) -> Vec<u8> {
        let mut b = (cols.len() as i16).to_be_bytes().to_vec();
        for (name, typ, format) in cols {
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(&0u32.to_be_bytes());
            b.extend_from_slice(&0i16.to_be_bytes());
            b.extend_from_slice(&typ.to_be_bytes());
            b.extend_from_slice(&4i16.to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b.extend_from_slice(&format.to_be_bytes());
        }
        msg(b'T', &b)
    }

    #[test]
    fn tuples_are_walked_at_their_alignment_and_checked() {
        let mut m = vec![b'M'];
        m.extend_from_slice(&[0; TUPLE_PADDING]);
        let first = m.len();
        m.extend_from_slice(&12u32.to_ne_bytes());
        m.extend_from_slice(&[7; 8]);
        m.extend_from_slice(&[0; 4]); // to the next boundary
        let second = m.len();
        m.extend_from_slice(&5u32.to_ne_bytes());
        m.push(9);
        let body = match BackendMessage::decode(&m).unwrap() {
            BackendMessage::Tuples(body) => body,
            other => panic!("unexpected {other:?}"),
        };
        let got: Vec<&[u8]> = tuples(body).map(Result::unwrap).collect();
        assert_eq!(got, [&m[first..first + 12], &m[second..]]);
        // an empty batch is no error
        assert_eq!(tuples(&[]).count(), 0);
        // a length past the end, below its own four bytes, or cut short
        for bad in [&m[..m.len() - 1], &m[..first + 2]] {
            assert!(matches!(
                BackendMessage::decode(bad),
                Err(DecodeError::BadLength { message: 'M', .. })
            ));
        }
        let mut tiny = m[..first].to_vec();
        tiny.extend_from_slice(&2u32.to_ne_bytes());
        assert!(BackendMessage::decode(&tiny).is_err());
        assert!(BackendMessage::decode(b"M12").is_err());
    }

    #[test]
    fn row_description_round_trip() {
        let m = row_description(&[("a", 23, 1), ("b", 25, 0)]);
        match BackendMessage::decode(&m).unwrap() {
            BackendMessage::RowDescription(f) => {
                assert_eq!(f.len(), 2);
                assert_eq!(f[0].name, b"a");
                assert_eq!(f[0].type_oid, 23);
                assert_eq!(f[0].format, 1);
                assert_eq!(f[1].type_oid, 25);
                assert_eq!(f[1].format, 0);
                assert_eq!(f[1].type_modifier, -1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn row_description_zero_columns() {
        let m = row_description(&[]);
        assert_eq!(
            BackendMessage::decode(&m).unwrap(),
            BackendMessage::RowDescription(vec![])
        );
    }

    #[test]
    fn row_description_truncated_and_trailing() {
        let m = row_description(&[("a", 23, 1)]);
        for cut in 1..m.len() {
            assert!(
                matches!(
                    BackendMessage::decode(&m[..cut]),
                    Err(DecodeError::Truncated { message: 'T' })
                ),
                "cut at {cut}"
            );
        }
        let mut long = m.clone();
        long.push(7);
        assert_eq!(
            BackendMessage::decode(&long),
            Err(DecodeError::TrailingBytes {
                message: 'T',
                count: 1
            })
        );
        let negative = msg(b'T', &(-1i16).to_be_bytes());
        assert_eq!(
            BackendMessage::decode(&negative),
            Err(DecodeError::BadLength {
                message: 'T',
                value: -1
            })
        );
    }

    #[test]
    fn command_complete_and_ready() {
        assert_eq!(
            BackendMessage::decode(&msg(b'C', b"INSERT 0 1\0")).unwrap(),
            BackendMessage::CommandComplete(b"INSERT 0 1")
        );
        assert!(BackendMessage::decode(&msg(b'C', b"INSERT 0 1")).is_err());
        assert!(BackendMessage::decode(&msg(b'C', b"A\0B")).is_err());
        assert_eq!(
            BackendMessage::decode(b"ZI").unwrap(),
            BackendMessage::ReadyForQuery(b'I')
        );
        assert!(BackendMessage::decode(b"Z").is_err());
        assert!(BackendMessage::decode(b"ZII").is_err());
    }

    #[test]
    fn error_and_notice_fields() {
        let body = b"SERROR\0VERROR\0C22012\0Mdivision by zero\0\0";
        let m = msg(b'E', body);
        assert_eq!(
            BackendMessage::decode(&m).unwrap(),
            BackendMessage::ErrorResponse(body)
        );
        let f: Vec<_> = fields(body).collect::<Result<_, _>>().unwrap();
        assert_eq!(f[2], (b'C', &b"22012"[..]));
        assert_eq!(f[3], (b'M', &b"division by zero"[..]));
        assert_eq!(f.len(), 4);
        let n = msg(b'N', b"SNOTICE\0Mhi\0\0");
        assert!(matches!(
            BackendMessage::decode(&n).unwrap(),
            BackendMessage::NoticeResponse(_)
        ));
        // missing terminator, missing NUL, trailing garbage
        assert!(BackendMessage::decode(&msg(b'E', b"SERROR\0")).is_err());
        assert!(BackendMessage::decode(&msg(b'E', b"SERROR")).is_err());
        assert!(BackendMessage::decode(&msg(b'E', b"SERROR\0\0x")).is_err());
        assert!(BackendMessage::decode(&msg(b'E', b"")).is_err());
    }

    #[test]
    fn copy_empty_status_notification_unknown() {
        assert_eq!(
            BackendMessage::decode(b"G\0\0\0").unwrap(),
            BackendMessage::CopyInResponse
        );
        assert_eq!(
            BackendMessage::decode(b"H").unwrap(),
            BackendMessage::CopyOutResponse
        );
        assert_eq!(
            BackendMessage::decode(b"W").unwrap(),
            BackendMessage::CopyBothResponse
        );
        assert_eq!(
            BackendMessage::decode(b"I").unwrap(),
            BackendMessage::EmptyQueryResponse
        );
        assert_eq!(
            BackendMessage::decode(b"Sa\0b\0").unwrap(),
            BackendMessage::ParameterStatus(b"a", b"b")
        );
        let mut a = vec![b'A'];
        a.extend_from_slice(&42i32.to_be_bytes());
        a.extend_from_slice(b"ch\0pl\0");
        assert_eq!(
            BackendMessage::decode(&a).unwrap(),
            BackendMessage::NotificationResponse {
                pid: 42,
                channel: b"ch",
                payload: b"pl"
            }
        );
        assert_eq!(
            BackendMessage::decode(b"q123").unwrap(),
            BackendMessage::Unknown { tag: b'q', len: 3 }
        );
        assert_eq!(BackendMessage::decode(b""), Err(DecodeError::Empty));
    }
}

/// `unpack_sql_state` of elog.c: the five characters of a packed SQLSTATE.
pub fn unpack_sql_state(mut code: i32) -> [u8; 5] {
    let mut out = [0u8; 5];
    for c in out.iter_mut() {
        *c = ((code & 0x3F) as u8) + b'0';
        code >>= 6;
    }
    out
}

/// `MAKE_SQLSTATE`: pack five SQLSTATE characters.
pub fn pack_sql_state(s: &[u8; 5]) -> i32 {
    s.iter().rev().fold(0, |acc, &c| {
        (acc << 6) | ((c.wrapping_sub(b'0') & 0x3F) as i32)
    })
}

#[cfg(test)]
mod sqlstate_tests {
    use super::*;

    #[test]
    fn sqlstates_round_trip() {
        for s in [b"22012", b"57014", b"XX000", b"0A000", b"42P01", b"00000"] {
            assert_eq!(&unpack_sql_state(pack_sql_state(s)), s);
        }
        // ERRCODE_DIVISION_BY_ZERO as the server packs it
        assert_eq!(&unpack_sql_state(pack_sql_state(b"22012")), b"22012");
    }
}

/// Robustness: whatever bytes arrive through the queue, decoding returns a value or an error and
/// never panics or reads out of bounds (a bounded, seeded search run by every `cargo test`).
#[cfg(test)]
mod arbitrary_input {
    use super::*;
    use crate::rng::Rng;

    /// Decode `message` and walk everything that decodes lazily; true if it decoded.
    fn exercise(message: &[u8]) -> bool {
        let Ok(decoded) = BackendMessage::decode(message) else {
            return false;
        };
        match decoded {
            BackendMessage::ErrorResponse(body) | BackendMessage::NoticeResponse(body) => {
                for (_, value) in fields(body).flatten() {
                    assert!(value.len() <= body.len());
                }
            }
            BackendMessage::RowDescription(columns) => assert!(columns.len() <= message.len()),
            _ => {}
        }
        true
    }

    /// Valid messages of the kinds the launcher reads, to mutate.
    fn seeds() -> Vec<Vec<u8>> {
        let mut desc = vec![b'T', 0, 1];
        desc.extend_from_slice(b"r\0");
        desc.extend_from_slice(&[0; 6]);
        desc.extend_from_slice(&23u32.to_be_bytes());
        desc.extend_from_slice(&4i16.to_be_bytes());
        desc.extend_from_slice(&(-1i32).to_be_bytes());
        desc.extend_from_slice(&1i16.to_be_bytes());
        vec![
            desc,
            b"CSELECT 1\0".to_vec(),
            b"ESERROR\0C22012\0Mdivision by zero\0\0".to_vec(),
            b"NSNOTICE\0Mhello\0\0".to_vec(),
            b"ZI".to_vec(),
            b"Sclient_encoding\0UTF8\0".to_vec(),
            [b"A".as_slice(), &7i32.to_be_bytes(), b"chan\0payload\0"].concat(),
            [
                b"M".as_slice(),
                &[0; TUPLE_PADDING],
                &12u32.to_ne_bytes(),
                &[1; 8],
            ]
            .concat(),
        ]
    }

    #[test]
    fn the_seeds_decode() {
        for seed in seeds() {
            assert!(exercise(&seed), "{seed:?}");
        }
    }

    #[test]
    fn random_and_mutated_messages_never_panic() {
        let mut rng = Rng(0x5047_4252_0000_0001);
        let seeds = seeds();
        let tags = b"TDMCENZGHWISAxq";
        let (mut decoded, mut refused) = (0, 0);
        for case in 0..50_000 {
            let message = if case % 2 == 0 {
                // a known tag and random bytes
                let len = rng.below(64);
                let mut m = vec![tags[rng.below(tags.len())]];
                m.extend((0..len).map(|_| rng.next() as u8));
                m
            } else {
                // a valid message with bytes flipped, cut or appended
                let mut m = seeds[rng.below(seeds.len())].clone();
                for _ in 0..1 + rng.below(3) {
                    match rng.below(3) {
                        0 if !m.is_empty() => {
                            let i = rng.below(m.len());
                            m[i] ^= 1 << rng.below(8);
                        }
                        0 | 1 => m.truncate(rng.below(m.len() + 1)),
                        _ => m.push(rng.next() as u8),
                    }
                }
                m
            };
            if exercise(&message) {
                decoded += 1;
            } else {
                refused += 1;
            }
        }
        // both outcomes occur: the search reaches the decoder's checks and its successes
        assert!(
            decoded > 1000 && refused > 1000,
            "{decoded} decoded, {refused} refused"
        );
    }
}
