//! Extensions (RFC 9420 §13) and the lists of `uint16` values of Capabilities
//! (§7.2), kept as validated, borrowed encodings so unknown and GREASE values
//! (§13.5) survive byte-exact.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

/// `application_id` (§5.3.3).
pub const EXT_APPLICATION_ID: u16 = 0x0001;
/// `ratchet_tree` (§12.4.3.3).
pub const EXT_RATCHET_TREE: u16 = 0x0002;
/// `required_capabilities` (§11.1).
pub const EXT_REQUIRED_CAPABILITIES: u16 = 0x0003;
/// `external_pub` (§12.4.3.2).
pub const EXT_EXTERNAL_PUB: u16 = 0x0004;
/// `external_senders` (§12.1.8.1).
pub const EXT_EXTERNAL_SENDERS: u16 = 0x0005;
/// `last_resort` (RFC 9420 §17.3 registry, from the MLS extensions draft).
pub const EXT_LAST_RESORT: u16 = 0x000a;

/// One extension: `{ ExtensionType extension_type; opaque extension_data<V>; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension type.
    pub extension_type: u16,
    /// The extension's data, undecoded.
    pub extension_data: &'a [u8],
}

impl Encode for Extension<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(self.extension_type)?;
        w.write_opaque(self.extension_data)
    }
}

impl<'a> Decode<'a> for Extension<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Ok(Self { extension_type: r.read_u16()?, extension_data: r.read_opaque()? })
    }
}

/// `Extension extensions<V>`: the body of the vector, checked to be a
/// sequence of well-formed extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Extensions<'a>(&'a [u8]);

impl<'a> Extensions<'a> {
    /// Checks that `body` is a sequence of extensions.
    pub fn from_body(body: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(body);
        while !r.is_empty() {
            Extension::decode(&mut r)?;
        }
        Ok(Self(body))
    }

    /// The encoded extensions, without the length prefix.
    pub fn body(&self) -> &'a [u8] {
        self.0
    }

    /// The extensions in order.
    pub fn iter(&self) -> impl Iterator<Item = Extension<'a>> + 'a {
        let mut r = Reader::new(self.0);
        core::iter::from_fn(move || if r.is_empty() { None } else { Extension::decode(&mut r).ok() })
    }

    /// The data of the first extension of type `t`.
    pub fn find(&self, t: u16) -> Option<&'a [u8]> {
        self.iter().find(|e| e.extension_type == t).map(|e| e.extension_data)
    }

    /// True if some type appears twice.
    pub fn has_duplicates(&self) -> bool {
        self.iter().enumerate().any(|(i, a)| self.iter().skip(i + 1).any(|b| b.extension_type == a.extension_type))
    }

    /// Number of extensions.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Encode for Extensions<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_vector(|w| self.iter().try_for_each(|e| e.encode(w)))
    }
}

impl<'a> Decode<'a> for Extensions<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_body(r.read_opaque()?)
    }
}

/// A `uint16 values<V>` list (versions, cipher suites, extension, proposal
/// and credential types), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct U16List<'a>(&'a [u8]);

impl<'a> U16List<'a> {
    /// Checks that `body` holds whole `uint16`s.
    pub fn from_body(body: &'a [u8]) -> Result<Self, CodecError> {
        if !body.len().is_multiple_of(2) {
            return Err(CodecError::Truncated);
        }
        Ok(Self(body))
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0.chunks_exact(2).map(|c| c.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b)))
    }

    /// True if `v` is listed.
    pub fn contains(&self, v: u16) -> bool {
        self.iter().any(|x| x == v)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Encode for U16List<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_vector(|w| self.iter().try_for_each(|v| w.write_u16(v)))
    }
}

impl<'a> Decode<'a> for U16List<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_body(r.read_opaque()?)
    }
}

/// `ExternalSender` (§12.1.8.1): a party allowed to send proposals from
/// outside the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternalSender<'a> {
    /// `SignaturePublicKey signature_key`.
    pub signature_key: &'a [u8],
    /// Its credential.
    pub credential: crate::credential::Credential<'a>,
}
crate::tls_struct!(ExternalSender<'a> { signature_key, credential });

/// The `index`-th entry of an `external_senders` extension's data
/// (`ExternalSender external_senders<V>`), if there is one.
pub fn external_sender(extension_data: &[u8], index: u32) -> Option<ExternalSender<'_>> {
    let mut r = Reader::new(extension_data);
    let list: crate::codec::ListView<'_, ExternalSender<'_>> = crate::codec::ListView::from_body(r.read_opaque().ok()?).ok()?;
    if !r.is_empty() {
        return None;
    }
    list.iter().nth(usize::try_from(index).ok()?)
}
