//! Credentials (RFC 9420 §5.3): basic and X.509.
//!
//! Whether a credential is acceptable for its signature key is the
//! application's decision (§5.3.1); the core only decodes it.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

/// `basic(1)`.
pub const CREDENTIAL_BASIC: u16 = 0x0001;
/// `x509(2)`.
pub const CREDENTIAL_X509: u16 = 0x0002;
/// Most certificates an X.509 chain may hold.
pub const MAX_CERTIFICATE_CHAIN: usize = 8;

/// A credential, borrowed from its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// An application-defined identity.
    Basic {
        /// `opaque identity<V>`.
        identity: &'a [u8],
    },
    /// A chain of DER certificates, end-entity first.
    X509 {
        /// The chain (at most [`MAX_CERTIFICATE_CHAIN`] certificates).
        certificates: CertificateChain<'a>,
    },
}

impl Credential<'_> {
    /// The `CredentialType` value.
    pub fn credential_type(&self) -> u16 {
        match self {
            Self::Basic { .. } => CREDENTIAL_BASIC,
            Self::X509 { .. } => CREDENTIAL_X509,
        }
    }
}

/// `Certificate certificates<V>`: the vector's body, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateChain<'a>(&'a [u8]);

impl<'a> CertificateChain<'a> {
    /// Checks that `body` is a sequence of at most [`MAX_CERTIFICATE_CHAIN`]
    /// `opaque cert_data<V>`.
    pub fn from_body(body: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(body);
        let mut n = 0usize;
        while !r.is_empty() {
            r.read_opaque()?;
            n += 1;
            if n > MAX_CERTIFICATE_CHAIN {
                return Err(CodecError::CapacityExceeded(crate::capacity::Capacity::CertificateChain));
            }
        }
        Ok(Self(body))
    }

    /// The DER certificates, end-entity first.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader::new(self.0);
        core::iter::from_fn(move || if r.is_empty() { None } else { r.read_opaque().ok() })
    }
}

impl Encode for Credential<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(self.credential_type())?;
        match self {
            Self::Basic { identity } => w.write_opaque(identity),
            Self::X509 { certificates } => w.write_vector(|w| certificates.iter().try_for_each(|c| w.write_opaque(c))),
        }
    }
}

impl<'a> Decode<'a> for Credential<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        match r.read_u16()? {
            CREDENTIAL_BASIC => Ok(Self::Basic { identity: r.read_opaque()? }),
            CREDENTIAL_X509 => Ok(Self::X509 { certificates: CertificateChain::from_body(r.read_opaque()?)? }),
            // Other types have no encoding this build knows of.
            _ => Err(CodecError::InvalidValue),
        }
    }
}
