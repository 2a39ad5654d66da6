//! Thrift's strict binary protocol, reading under a byte budget per message.
//!
//! Why not `thrift::protocol::TBinaryInputProtocol`: it allocates whatever a length prefix says
//! before reading the bytes (`vec![0; len]`), and the generated code reserves `Vec::with_capacity`
//! for whatever a list header says. Four bytes from a client could make the process allocate
//! gigabytes, or abort on a negative length. Here every length and element count is checked
//! against the bytes left in the message's budget (an element takes at least one byte on the
//! wire) before anything is allocated, so a bad or hostile message fails its own connection and
//! nothing else. The wire format is the same; only strict messages (with the version header, as
//! every Thrift client writes by default) are accepted.

use std::io::Read;

use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TListIdentifier, TMapIdentifier, TMessageIdentifier, TMessageType,
    TSetIdentifier, TStructIdentifier, TType,
};
use thrift::{ProtocolError, ProtocolErrorKind};

/// The strict binary protocol's version header (high half of the first word).
const VERSION_1: u32 = 0x8001_0000;
const VERSION_MASK: u32 = 0xffff_0000;

/// Most elements in one list, set or map of a request. No call needs more: PostgreSQL takes at
/// most 65,535 parameters per statement, and a batch is limited by `max_batch_len` (1,000 by
/// default). See `read_count` for why the byte budget is not enough.
const MAX_ELEMENTS: usize = 65_536;

/// A binary-protocol reader with a per-message byte budget.
pub struct BoundedBinaryInput<R: Read> {
    reader: R,
    max_message_bytes: usize,
    /// Bytes the current message may still take.
    left: usize,
}

fn invalid(kind: ProtocolErrorKind, message: String) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError { kind, message })
}

/// An error with its message: thrift's `Display` of a protocol error shows only its kind.
pub fn describe(error: &thrift::Error) -> String {
    match error {
        thrift::Error::Protocol(e) => format!("{e}: {}", e.message),
        thrift::Error::Transport(e) => format!("{e}: {}", e.message),
        thrift::Error::Application(e) => format!("{e}: {}", e.message),
        other => other.to_string(),
    }
}

impl<R: Read> BoundedBinaryInput<R> {
    /// Reads from `reader`; no message may be longer than `max_message_bytes`.
    pub fn new(reader: R, max_message_bytes: usize) -> BoundedBinaryInput<R> {
        BoundedBinaryInput { reader, max_message_bytes, left: max_message_bytes }
    }

    fn take(&mut self, n: usize) -> thrift::Result<()> {
        if n > self.left {
            return Err(invalid(
                ProtocolErrorKind::SizeLimit,
                format!("request larger than max_message_bytes ({} bytes)", self.max_message_bytes),
            ));
        }
        self.left -= n;
        Ok(())
    }

    fn read_array<const N: usize>(&mut self) -> thrift::Result<[u8; N]> {
        self.take(N)?;
        let mut buf = [0u8; N];
        self.reader.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// A length or element count: not negative, and at most what the budget still allows.
    fn read_size(&mut self, what: &str) -> thrift::Result<usize> {
        let size = i32::from_be_bytes(self.read_array()?);
        let size = usize::try_from(size)
            .map_err(|_| invalid(ProtocolErrorKind::NegativeSize, format!("negative {what} size {size}")))?;
        if size > self.left {
            return Err(invalid(
                ProtocolErrorKind::SizeLimit,
                format!("{what} of {size} exceeds what is left of max_message_bytes ({} bytes)", self.left),
            ));
        }
        Ok(size)
    }

    /// An element count: a size, and at most [`MAX_ELEMENTS`]. The byte budget alone bounds the
    /// count by the bytes left, but the generated code reserves `count * size_of::<T>()` up front
    /// (48 to 88 bytes per statement or value): a 40-byte request claiming 16 million statements
    /// reserved 700 MB (found by the `thrift_api` fuzz target, fuzz/corpus/thrift_api/
    /// regression-huge-list-reservation), which aborts the process wherever the allocation fails.
    fn read_count(&mut self, what: &str) -> thrift::Result<usize> {
        let count = self.read_size(what)?;
        if count > MAX_ELEMENTS {
            return Err(invalid(
                ProtocolErrorKind::SizeLimit,
                format!("{what} of {count} elements exceeds the limit of {MAX_ELEMENTS}"),
            ));
        }
        Ok(count)
    }

    fn read_type(&mut self) -> thrift::Result<TType> {
        let [b] = self.read_array()?;
        Ok(match b {
            0x00 => TType::Stop,
            0x01 => TType::Void,
            0x02 => TType::Bool,
            0x03 => TType::I08,
            0x04 => TType::Double,
            0x06 => TType::I16,
            0x08 => TType::I32,
            0x0A => TType::I64,
            0x0B => TType::String,
            0x0C => TType::Struct,
            0x0D => TType::Map,
            0x0E => TType::Set,
            0x0F => TType::List,
            0x10 => TType::Utf8,
            0x11 => TType::Utf16,
            other => return Err(invalid(ProtocolErrorKind::InvalidData, format!("unknown field type {other:#04x}"))),
        })
    }
}

impl<R: Read> TInputProtocol for BoundedBinaryInput<R> {
    fn read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        self.left = self.max_message_bytes;
        let header = u32::from_be_bytes(self.read_array()?);
        if header & VERSION_MASK != VERSION_1 {
            return Err(invalid(
                ProtocolErrorKind::BadVersion,
                format!("not a strict binary-protocol message (header {header:#010x})"),
            ));
        }
        let message_type = TMessageType::try_from((header & 0xff) as u8)?;
        let name = self.read_string()?;
        let sequence_number = self.read_i32()?;
        Ok(TMessageIdentifier::new(name, message_type, sequence_number))
    }

    fn read_message_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        Ok(None)
    }

    fn read_struct_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        let field_type = self.read_type()?;
        let id = if field_type == TType::Stop { 0 } else { self.read_i16()? };
        Ok(TFieldIdentifier::new::<Option<String>, String, i16>(None, field_type, id))
    }

    fn read_field_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        let len = self.read_size("string")?;
        self.take(len)?;
        let mut buf = vec![0u8; len];
        self.reader.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn read_bool(&mut self) -> thrift::Result<bool> {
        Ok(self.read_i8()? != 0)
    }

    fn read_i8(&mut self) -> thrift::Result<i8> {
        Ok(i8::from_be_bytes(self.read_array()?))
    }

    fn read_i16(&mut self) -> thrift::Result<i16> {
        Ok(i16::from_be_bytes(self.read_array()?))
    }

    fn read_i32(&mut self) -> thrift::Result<i32> {
        Ok(i32::from_be_bytes(self.read_array()?))
    }

    fn read_i64(&mut self) -> thrift::Result<i64> {
        Ok(i64::from_be_bytes(self.read_array()?))
    }

    fn read_double(&mut self) -> thrift::Result<f64> {
        Ok(f64::from_be_bytes(self.read_array()?))
    }

    fn read_string(&mut self) -> thrift::Result<String> {
        let bytes = self.read_bytes()?;
        String::from_utf8(bytes).map_err(From::from)
    }

    fn read_list_begin(&mut self) -> thrift::Result<TListIdentifier> {
        let element_type = self.read_type()?;
        let size = self.read_count("list")?;
        Ok(TListIdentifier::new(element_type, size as i32))
    }

    fn read_list_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_set_begin(&mut self) -> thrift::Result<TSetIdentifier> {
        let element_type = self.read_type()?;
        let size = self.read_count("set")?;
        Ok(TSetIdentifier::new(element_type, size as i32))
    }

    fn read_set_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        let key_type = self.read_type()?;
        let value_type = self.read_type()?;
        let size = self.read_count("map")?;
        Ok(TMapIdentifier::new(key_type, value_type, size as i32))
    }

    fn read_map_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_byte(&mut self) -> thrift::Result<u8> {
        let [b] = self.read_array()?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use thrift::protocol::{TBinaryOutputProtocol, TOutputProtocol};
    use thrift::transport::TBufferChannel;

    use super::*;

    /// A message written by the thrift crate's own (unbounded) binary protocol.
    fn message(write_body: impl FnOnce(&mut dyn TOutputProtocol)) -> Vec<u8> {
        let mut channel = TBufferChannel::with_capacity(0, 1 << 16);
        {
            let mut out = TBinaryOutputProtocol::new(&mut channel, true);
            out.write_message_begin(&TMessageIdentifier::new("m", TMessageType::Call, 7)).expect("write");
            write_body(&mut out);
            out.flush().expect("flush");
        }
        channel.write_bytes()
    }

    #[test]
    fn reads_what_the_standard_protocol_writes() {
        let bytes = message(|out| {
            out.write_string("hello").expect("write");
            out.write_list_begin(&TListIdentifier::new(TType::I64, 2)).expect("write");
            out.write_i64(-3).expect("write");
            out.write_i64(4).expect("write");
            out.write_double(1.5).expect("write");
        });
        let mut input = BoundedBinaryInput::new(bytes.as_slice(), 1024);
        let ident = input.read_message_begin().expect("header");
        assert_eq!((ident.name.as_str(), ident.sequence_number), ("m", 7));
        assert_eq!(input.read_string().expect("string"), "hello");
        assert_eq!(input.read_list_begin().expect("list").size, 2);
        assert_eq!((input.read_i64().expect("i64"), input.read_i64().expect("i64")), (-3, 4));
        assert_eq!(input.read_double().expect("double"), 1.5);
    }

    #[test]
    fn lengths_beyond_the_budget_or_negative_are_errors_not_allocations() {
        // A string header claiming 2 GiB, then a list claiming -1 elements.
        let huge = message(|out| out.write_i32(i32::MAX).expect("write"));
        let mut input = BoundedBinaryInput::new(huge.as_slice(), 1024);
        input.read_message_begin().expect("header");
        let err = input.read_bytes().expect_err("too long");
        assert!(describe(&err).contains("max_message_bytes"), "{err:?}");

        let negative = message(|out| {
            out.write_byte(0x0A).expect("write");
            out.write_i32(-1).expect("write");
        });
        let mut input = BoundedBinaryInput::new(negative.as_slice(), 1024);
        input.read_message_begin().expect("header");
        assert!(describe(&input.read_list_begin().expect_err("negative")).contains("negative list size -1"));
    }

    #[test]
    fn element_counts_are_capped_before_the_generated_code_reserves_them() {
        let at_cap = message(|out| out.write_list_begin(&TListIdentifier::new(TType::Bool, 65_536)).expect("write"));
        let mut input = BoundedBinaryInput::new(at_cap.as_slice(), 1 << 20);
        input.read_message_begin().expect("header");
        assert_eq!(input.read_list_begin().expect("at the cap").size, 65_536);
        // Within the byte budget, but 16 million elements: refused before any allocation.
        let huge =
            message(|out| out.write_list_begin(&TListIdentifier::new(TType::Struct, 16_000_000)).expect("write"));
        let mut input = BoundedBinaryInput::new(huge.as_slice(), 16 << 20);
        input.read_message_begin().expect("header");
        let err = input.read_list_begin().expect_err("over the cap");
        assert!(describe(&err).contains("exceeds the limit of 65536"), "{err:?}");
    }

    #[test]
    fn the_budget_is_per_message_and_non_strict_messages_are_refused() {
        let one = message(|out| out.write_string(&"x".repeat(100)).expect("write"));
        let two: Vec<u8> = one.iter().chain(one.iter()).copied().collect();
        let mut input = BoundedBinaryInput::new(two.as_slice(), 120);
        for _ in 0..2 {
            input.read_message_begin().expect("header");
            assert_eq!(input.read_string().expect("fits the budget").len(), 100);
        }
        let mut garbage = BoundedBinaryInput::new(&b"GET / HTTP/1.1\r\n"[..], 1024);
        assert!(garbage.read_message_begin().is_err());
    }
}
