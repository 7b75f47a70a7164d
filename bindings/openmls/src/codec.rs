//! Our value codec: a compact, self-describing binary serde format for stored OpenMLS values.
//!
//! Why our own: `openmls_memory_storage` stores every value as serde_json, where each byte of a key or
//! secret becomes up to four characters of text; and OpenMLS rewrites its whole message-secrets store
//! (with the member list of every kept past epoch) after every message. A compact binary format alone
//! is not enough for 1 000 members: the member lists must not be serialised again at all (see
//! `encode_split`). The format must be self-describing because some OpenMLS and tls_codec types
//! deserialise with `deserialize_any` (untagged enums, byte vectors that accept several shapes).
//!
//! Layout: every value starts with a one-byte tag. Unsigned integers below 128 are the tag itself
//! (`0x80 | n`); larger ones and lengths are LEB128. Structs and tuples are sequences of their fields in
//! declaration order (no field names); enums carry the variant index. Not human readable.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{ser, Serialize};
use sha2::{Digest, Sha256};

const T_UNIT: u8 = 0; // also `None`
const T_SOME: u8 = 1;
const T_FALSE: u8 = 2;
const T_TRUE: u8 = 3;
const T_UINT: u8 = 4;
const T_SINT: u8 = 5;
const T_F32: u8 = 6;
const T_F64: u8 = 7;
const T_CHAR: u8 = 8;
const T_STR: u8 = 9;
const T_BYTES: u8 = 10;
const T_SEQ: u8 = 11;
const T_MAP: u8 = 12;
const T_UNIT_VARIANT: u8 = 13;
const T_NEWTYPE_VARIANT: u8 = 14;
const T_TUPLE_VARIANT: u8 = 15;
const T_STRUCT_VARIANT: u8 = 16;
const T_U128: u8 = 17;
const T_I128: u8 = 18;
const T_SEQ_OPEN: u8 = 19;
const T_MAP_OPEN: u8 = 20;
const T_END: u8 = 21;
const T_SMALL: u8 = 0x80;

/// A value that does not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "codec: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

impl ser::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError(msg.to_string())
    }
}

impl de::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, CodecError>;

fn put_leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut enc = Encoder {
        out: Vec::with_capacity(64),
        split: None,
    };
    value.serialize(&mut enc)?;
    Ok(enc.out)
}

pub fn decode<T: de::DeserializeOwned>(input: &[u8]) -> Result<T> {
    let mut dec = Decoder {
        input,
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut dec)?;
    if dec.pos != input.len() {
        return Err(CodecError(format!(
            "{} trailing bytes after the value",
            input.len() - dec.pos
        )));
    }
    Ok(value)
}

/// What a piece cut out of an encoded message-secrets store holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PieceKind {
    /// A past epoch's member list: never changes once its epoch is past.
    Leaves = 1,
    /// A past epoch's message secrets: change only when a late message of that epoch is decrypted.
    Secrets = 2,
}

/// A part of a past epoch cut out of an encoded message-secrets store.
pub struct Piece {
    /// Offset in the encoded store where the piece belongs (pieces are in store order).
    pub at: usize,
    pub kind: PieceKind,
    /// SHA-256 of the epoch's serialised group context: it commits to the tree hash, so it names this
    /// exact epoch (also across rival commits of one epoch number).
    pub digest: [u8; 32],
    /// The encoded piece, or None for a member list that `known(digest)` said is stored already.
    pub bytes: Option<Vec<u8>>,
}

/// Encode OpenMLS's `MessageSecretsStore` with its past epochs cut out.
///
/// OpenMLS hands the whole store to storage after every message, including, for each kept past
/// epoch (`EpochTree`), that epoch's message secrets and its member list. The encoder cuts both out
/// of every `EpochTree` at their offset: the secrets become their own row (rewritten only when they
/// change), and a member list whose digest `known` reports as stored is not serialised at all.
/// Concatenating the pieces back at their offsets gives exactly `encode(value)`. A value of another
/// shape simply yields no pieces.
pub fn encode_split<T: Serialize + ?Sized>(
    value: &T,
    known: &dyn Fn(&[u8; 32]) -> bool,
) -> Result<(Vec<u8>, Vec<Piece>)> {
    let mut enc = Encoder {
        out: Vec::with_capacity(4096),
        split: Some(Split {
            known,
            context: None,
            pieces: Vec::new(),
        }),
    };
    value.serialize(&mut enc)?;
    let pieces = enc.split.map(|s| s.pieces).unwrap_or_default();
    Ok((enc.out, pieces))
}

struct Split<'a> {
    known: &'a dyn Fn(&[u8; 32]) -> bool,
    context: Option<[u8; 32]>,
    pieces: Vec<Piece>,
}

struct Encoder<'a> {
    out: Vec<u8>,
    split: Option<Split<'a>>,
}

impl Encoder<'_> {
    #[inline]
    fn uint(&mut self, v: u64) {
        if v < 128 {
            self.out.push(T_SMALL | v as u8);
        } else {
            self.out.push(T_UINT);
            put_leb(&mut self.out, v);
        }
    }

    #[inline]
    fn sint(&mut self, v: i64) {
        if v >= 0 {
            self.uint(v as u64);
        } else {
            self.out.push(T_SINT);
            put_leb(&mut self.out, ((v << 1) ^ (v >> 63)) as u64);
        }
    }

    fn head(&mut self, tag: u8, len: usize) {
        self.out.push(tag);
        put_leb(&mut self.out, len as u64);
    }
}

pub struct Compound<'e, 'a> {
    enc: &'e mut Encoder<'a>,
    open: bool,
    name: &'static str,
}

impl<'e, 'a> ser::Serializer for &'e mut Encoder<'a> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Compound<'e, 'a>;
    type SerializeTuple = Compound<'e, 'a>;
    type SerializeTupleStruct = Compound<'e, 'a>;
    type SerializeTupleVariant = Compound<'e, 'a>;
    type SerializeMap = Compound<'e, 'a>;
    type SerializeStruct = Compound<'e, 'a>;
    type SerializeStructVariant = Compound<'e, 'a>;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(if v { T_TRUE } else { T_FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.sint(v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.sint(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.sint(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.sint(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.out.push(T_I128);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.uint(v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.uint(v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.uint(v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.uint(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.out.push(T_U128);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.out.push(T_F32);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.out.push(T_F64);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.out.push(T_CHAR);
        put_leb(&mut self.out, v as u64);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.head(T_STR, v.len());
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.head(T_BYTES, v.len());
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push(T_UNIT);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.out.push(T_SOME);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.out.push(T_UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.out.push(T_UNIT);
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.head(T_UNIT_VARIANT, index as usize);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.head(T_NEWTYPE_VARIANT, index as usize);
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'e, 'a>> {
        match len {
            Some(n) => self.head(T_SEQ, n),
            None => self.out.push(T_SEQ_OPEN),
        }
        Ok(Compound {
            enc: self,
            open: len.is_none(),
            name: "",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'e, 'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'e, 'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'e, 'a>> {
        self.head(T_TUPLE_VARIANT, index as usize);
        put_leb(&mut self.out, len as u64);
        Ok(Compound {
            enc: self,
            open: false,
            name: "",
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'e, 'a>> {
        match len {
            Some(n) => self.head(T_MAP, n),
            None => self.out.push(T_MAP_OPEN),
        }
        Ok(Compound {
            enc: self,
            open: len.is_none(),
            name: "",
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'e, 'a>> {
        self.head(T_SEQ, len);
        Ok(Compound {
            enc: self,
            open: false,
            name,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'e, 'a>> {
        self.head(T_STRUCT_VARIANT, index as usize);
        put_leb(&mut self.out, len as u64);
        Ok(Compound {
            enc: self,
            open: false,
            name: "",
        })
    }
}

impl Compound<'_, '_> {
    fn end_compound(self) -> Result<()> {
        if self.open {
            self.enc.out.push(T_END);
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut *self.enc)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        if self.enc.split.is_some() {
            if self.name == "MessageSecrets" && key == "serialized_context" {
                let start = self.enc.out.len();
                value.serialize(&mut *self.enc)?;
                let digest: [u8; 32] = Sha256::digest(&self.enc.out[start..]).into();
                if let Some(split) = self.enc.split.as_mut() {
                    split.context = Some(digest);
                }
                return Ok(());
            }
            if self.name == "EpochTree" && key == "message_secrets" {
                let at = self.enc.out.len();
                let split = self.enc.split.as_mut().expect("checked above");
                let mut sub = Encoder {
                    out: Vec::with_capacity(4096),
                    split: Some(Split {
                        known: split.known,
                        context: None,
                        pieces: Vec::new(),
                    }),
                };
                value.serialize(&mut sub)?;
                match sub.split.and_then(|s| s.context) {
                    Some(digest) => {
                        split.context = Some(digest);
                        split.pieces.push(Piece {
                            at,
                            kind: PieceKind::Secrets,
                            digest,
                            bytes: Some(sub.out),
                        });
                    }
                    // Not the shape we know: keep it inline, and the member list with it.
                    None => self.enc.out.extend_from_slice(&sub.out),
                }
                return Ok(());
            }
            if self.name == "EpochTree" && key == "leaves" {
                let at = self.enc.out.len();
                let split = self.enc.split.as_mut().expect("checked above");
                if let Some(digest) = split.context.take() {
                    let bytes = if (split.known)(&digest) {
                        None
                    } else {
                        Some(encode(value)?)
                    };
                    split.pieces.push(Piece {
                        at,
                        kind: PieceKind::Leaves,
                        digest,
                        bytes,
                    });
                    return Ok(());
                }
            }
        }
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<()> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<()> {
        self.end_compound()
    }
}

struct Decoder<'de> {
    input: &'de [u8],
    pos: usize,
    /// Nesting depth: stored rows come back through `restore_group` and the constructor, so a
    /// malformed row must fail with an error, not overflow the stack.
    depth: u32,
}

const MAX_DEPTH: u32 = 256;

impl<'de> Decoder<'de> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or_else(|| CodecError("value ends early".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| CodecError("value ends early".into()))
    }

    fn leb(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError("integer longer than 64 bits".into()))
    }

    fn len(&mut self) -> Result<usize> {
        let n = self.leb()?;
        usize::try_from(n).map_err(|_| CodecError(format!("length {n} too large")))
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| CodecError(format!("{n} bytes announced, fewer left")))?;
        let out = &self.input[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(CodecError(format!("value nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }
}

/// Elements of a sequence or entries of a map: counted, or open until `T_END`.
struct Items<'a, 'de> {
    de: &'a mut Decoder<'de>,
    left: Option<usize>,
}

impl<'de> Items<'_, 'de> {
    fn more(&mut self) -> Result<bool> {
        match &mut self.left {
            Some(0) => Ok(false),
            Some(n) => {
                *n -= 1;
                Ok(true)
            }
            None => {
                if self.de.peek()? == T_END {
                    self.de.pos += 1;
                    self.left = Some(0);
                    Ok(false)
                } else {
                    Ok(true)
                }
            }
        }
    }

    fn finish(&self) -> Result<()> {
        match self.left {
            Some(0) => Ok(()),
            _ => Err(CodecError("sequence has more items than read".into())),
        }
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = CodecError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        self.left.map(|n| n.min(4096))
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = CodecError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        self.left.map(|n| n.min(4096))
    }
}

fn visit_items<'de, V: Visitor<'de>>(
    de: &mut Decoder<'de>,
    left: Option<usize>,
    map: bool,
    visitor: V,
) -> Result<V::Value> {
    de.nest(|de| {
        let mut items = Items { de, left };
        let value = if map {
            visitor.visit_map(&mut items)?
        } else {
            visitor.visit_seq(&mut items)?
        };
        // An open sequence ends at its T_END; the visitor may stop before reading it.
        if items.left.is_none() && items.more()? {
            return Err(CodecError("sequence has more items than read".into()));
        }
        items.finish()?;
        Ok(value)
    })
}

struct Enum<'a, 'de> {
    de: &'a mut Decoder<'de>,
    tag: u8,
    index: u32,
}

impl<'a, 'de> de::EnumAccess<'de> for Enum<'a, 'de> {
    type Error = CodecError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index: de::value::U32Deserializer<CodecError> = self.index.into_deserializer();
        let value = seed.deserialize(index)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_, 'de> {
    type Error = CodecError;
    fn unit_variant(self) -> Result<()> {
        match self.tag {
            T_UNIT_VARIANT => Ok(()),
            _ => Err(CodecError("expected a unit variant".into())),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        match self.tag {
            T_NEWTYPE_VARIANT => self.de.nest(|de| seed.deserialize(de)),
            _ => Err(CodecError("expected a newtype variant".into())),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        match self.tag {
            T_TUPLE_VARIANT => {
                let n = self.de.len()?;
                visit_items(self.de, Some(n), false, visitor)
            }
            _ => Err(CodecError("expected a tuple variant".into())),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.tag {
            T_STRUCT_VARIANT => {
                let n = self.de.len()?;
                visit_items(self.de, Some(n), false, visitor)
            }
            _ => Err(CodecError("expected a struct variant".into())),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = CodecError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let tag = self.byte()?;
        match tag {
            t if t & T_SMALL != 0 => visitor.visit_u64(u64::from(t & 0x7f)),
            T_UNIT => visitor.visit_unit(),
            T_SOME => self.nest(|de| visitor.visit_some(de)),
            T_FALSE => visitor.visit_bool(false),
            T_TRUE => visitor.visit_bool(true),
            T_UINT => visitor.visit_u64(self.leb()?),
            T_SINT => {
                let z = self.leb()?;
                visitor.visit_i64(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            T_F32 => visitor.visit_f32(f32::from_le_bytes(self.array()?)),
            T_F64 => visitor.visit_f64(f64::from_le_bytes(self.array()?)),
            T_CHAR => {
                let c = self.leb()?;
                let c = u32::try_from(c)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| CodecError(format!("{c} is not a char")))?;
                visitor.visit_char(c)
            }
            T_STR => {
                let n = self.len()?;
                let s = std::str::from_utf8(self.take(n)?)
                    .map_err(|e| CodecError(format!("string is not UTF-8: {e}")))?;
                visitor.visit_borrowed_str(s)
            }
            T_BYTES => {
                let n = self.len()?;
                visitor.visit_borrowed_bytes(self.take(n)?)
            }
            T_SEQ => {
                let n = self.len()?;
                visit_items(self, Some(n), false, visitor)
            }
            T_SEQ_OPEN => visit_items(self, None, false, visitor),
            T_MAP => {
                let n = self.len()?;
                visit_items(self, Some(n), true, visitor)
            }
            T_MAP_OPEN => visit_items(self, None, true, visitor),
            T_U128 => visitor.visit_u128(u128::from_le_bytes(self.array()?)),
            T_I128 => visitor.visit_i128(i128::from_le_bytes(self.array()?)),
            other => Err(CodecError(format!("unexpected tag {other}"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            T_UNIT => {
                self.pos += 1;
                visitor.visit_none()
            }
            T_SOME => {
                self.pos += 1;
                self.nest(|de| visitor.visit_some(de))
            }
            other => Err(CodecError(format!("expected an option, found tag {other}"))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let tag = self.byte()?;
        if !(T_UNIT_VARIANT..=T_STRUCT_VARIANT).contains(&tag) {
            return Err(CodecError(format!("expected an enum, found tag {tag}")));
        }
        let index = self.leb()?;
        let index =
            u32::try_from(index).map_err(|_| CodecError(format!("variant {index} too large")))?;
        visitor.visit_enum(Enum {
            de: self,
            tag,
            index,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}
