//! Bound parameters of an autonomous call, as they travel from the launcher to the worker.
//!
//! Like a Bind message of the extended query protocol, each parameter carries its type OID (0
//! for a literal of unknown type, which the worker's parser infers, as for an unspecified
//! parameter type in Parse), its format (text or binary) and its bytes, or nothing for NULL.
//! The values never become part of the SQL text.
//!
//! Layout (native endianness, both ends run the same build on the same machine):
//! `u32 count`, then per parameter `u32 type_oid`, `u8 format` (0 NULL, 1 text, 2 binary),
//! `u32 len` and `len` bytes (absent for NULL).
#![forbid(unsafe_code)]

/// Most parameters a statement may have (the protocol's limit: an `int16` count).
pub const MAX_PARAMS: usize = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// 0: unknown, to be inferred by the worker's parser.
    pub type_oid: u32,
    pub value: Value<'a>,
}

/// Appends parameters to a buffer.
pub struct Encoder {
    buf: Vec<u8>,
    count: u32,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder with room for the count, which `finish` writes.
    pub fn new() -> Self {
        Self {
            buf: vec![0; 4],
            count: 0,
        }
    }

    pub fn push(&mut self, param: Param<'_>) {
        self.buf.extend_from_slice(&param.type_oid.to_ne_bytes());
        let (format, bytes): (u8, &[u8]) = match param.value {
            Value::Null => (0, &[]),
            Value::Text(b) => (1, b),
            Value::Binary(b) => (2, b),
        };
        self.buf.push(format);
        if format != 0 {
            let len = u32::try_from(bytes.len()).expect("parameter of 4 GB or more");
            self.buf.extend_from_slice(&len.to_ne_bytes());
            self.buf.extend_from_slice(bytes);
        }
        self.count += 1;
    }

    /// How many parameters were pushed.
    pub fn count(&self) -> usize {
        self.count as usize
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf[..4].copy_from_slice(&self.count.to_ne_bytes());
        self.buf
    }
}

/// The buffer does not hold what an [`Encoder`] writes.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Read every parameter of `buf`.
pub fn decode(buf: &[u8]) -> Result<Vec<Param<'_>>, Malformed> {
    let mut rest = buf;
    let count = take_u32(&mut rest)? as usize;
    if count > MAX_PARAMS {
        return Err(Malformed);
    }
    let mut params = Vec::with_capacity(count);
    for _ in 0..count {
        let type_oid = take_u32(&mut rest)?;
        let (&format, tail) = rest.split_first().ok_or(Malformed)?;
        rest = tail;
        let value = match format {
            0 => Value::Null,
            1 | 2 => {
                let len = take_u32(&mut rest)? as usize;
                if rest.len() < len {
                    return Err(Malformed);
                }
                let (bytes, tail) = rest.split_at(len);
                rest = tail;
                if format == 1 {
                    Value::Text(bytes)
                } else {
                    Value::Binary(bytes)
                }
            }
            _ => return Err(Malformed),
        };
        params.push(Param { type_oid, value });
    }
    if !rest.is_empty() {
        return Err(Malformed);
    }
    Ok(params)
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, Malformed> {
    if rest.len() < 4 {
        return Err(Malformed);
    }
    let (head, tail) = rest.split_at(4);
    *rest = tail;
    Ok(u32::from_ne_bytes(head.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let params = [
            Param {
                type_oid: 23,
                value: Value::Binary(&[0, 0, 0, 42]),
            },
            Param {
                type_oid: 0,
                value: Value::Text(b"2024-01-01 00:00+02"),
            },
            Param {
                type_oid: 25,
                value: Value::Null,
            },
            Param {
                type_oid: 17,
                value: Value::Binary(&[]),
            },
        ];
        let mut e = Encoder::new();
        for p in params {
            e.push(p);
        }
        assert_eq!(e.count(), 4);
        let buf = e.finish();
        assert_eq!(decode(&buf).unwrap(), params);
    }

    #[test]
    fn no_parameters() {
        let buf = Encoder::new().finish();
        assert_eq!(decode(&buf).unwrap(), vec![]);
    }

    #[test]
    fn malformed_buffers_are_refused() {
        let mut e = Encoder::new();
        e.push(Param {
            type_oid: 25,
            value: Value::Text(b"abc"),
        });
        let buf = e.finish();
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Err(Malformed), "cut at {cut}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(Malformed));
        let mut bad_format = buf.clone();
        bad_format[8] = 7;
        assert_eq!(decode(&bad_format), Err(Malformed));
        assert_eq!(decode(&u32::MAX.to_ne_bytes()), Err(Malformed));
    }
}
