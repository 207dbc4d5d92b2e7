//! A crypto engine plugged in at link time: a microcontroller's AES, SHA or
//! public-key accelerator, or a secure element's key slots (feature
//! `engine`; docs/architecture.md, decision 11).
//!
//! Every layer of the core computes with the suite's primitives (the tree's
//! hashes, the secret tree's ratchets, the key schedule, HPKE, message
//! protection), holding only a [`super::CipherSuite`]. A device has one
//! engine, so it is named once per program, as `critical-section` names its
//! implementation: the application implements [`CryptoEngine`] for a type
//! and writes `mls_nostd::crypto_engine!(ThatType);`, which defines the
//! functions the core calls. Dispatch is static (direct calls, inlined with
//! LTO); a build without the feature has none of this, and a program with
//! the feature but no `crypto_engine!` fails to link.
//!
//! Each method has the RustCrypto implementation as its default (also
//! callable as the functions of [`fallback`]), so an engine overrides what
//! its hardware does and nothing else. What goes through the engine:
//!
//! - the suite's hash ([`CryptoEngine::hash_start`]), and with it every
//!   HMAC and HKDF of the core (`ExpandWithLabel`, `DeriveSecret`, the
//!   ratchets, HPKE's key schedule), and the SHA-256 of the store's records;
//! - AEAD seal and open (message protection, HPKE, the Welcome);
//! - the DHKEM's Diffie-Hellman and public key (HPKE encap and decap,
//!   `DeriveKeyPair`), and decapsulation with a private key the engine
//!   holds ([`CryptoEngine::held_dh`]: a KeyPackage's init key that never
//!   leaves a secure element);
//! - signature verification ([`CryptoEngine::verify`]); signing goes through
//!   [`super::signer::Signer`], per member.
//!
//! An engine must compute exactly what the default does: the same bytes
//! and the same refusals (RFC 9420 §5.1; what a signature verification
//! accepts is listed in [`super::signature`]). The core keeps its own
//! checks around each call: lengths, the all-zero Diffie-Hellman output
//! (RFC 9180 §7.1.4), the wiping of a plaintext that failed to open.

use super::dhkem::Kem;
use super::signature::Scheme;
use super::{AEAD_TAG_LEN, AeadAlg, CryptoError, HashAlg};

/// 32-bit words of a [`HashContext`]: room for a SHA-512 state and block
/// with an engine's bookkeeping, or a CryptoCell-310 user context (60 words).
pub const HASH_CONTEXT_WORDS: usize = 64;

/// The state of a hash the engine runs. It lives in the core's memory
/// between calls and may be copied (HMAC and HKDF clone a keyed state), so
/// an engine whose hardware holds the state saves it here after each
/// update (STM32 HASH's context registers, a CryptoCell user context).
#[derive(Clone)]
pub struct HashContext(pub [u32; HASH_CONTEXT_WORDS]);

impl HashContext {
    /// An all-zero context, before [`CryptoEngine::hash_start`].
    pub const ZERO: Self = Self([0; HASH_CONTEXT_WORDS]);
}

/// A keyed hash's state (HMAC's inner and outer states) computes the MAC
/// as its key would: wiped when dropped, as the software hashes' are.
impl Drop for HashContext {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// What a hardware engine computes for the core. Methods are associated
/// functions: the engine is one per program; a peripheral it drives sits
/// behind a critical-section mutex of its own.
pub trait CryptoEngine {
    /// Begins a hash of `alg` in `ctx` and returns true, or returns false to
    /// leave this hash to the software (the default); a hash begun by the
    /// engine is continued and finished by it.
    fn hash_start(alg: HashAlg, ctx: &mut HashContext) -> bool {
        let _ = (alg, ctx);
        false
    }

    /// Feeds `data` to a hash this engine began.
    fn hash_update(alg: HashAlg, ctx: &mut HashContext, data: &[u8]) {
        let _ = (alg, ctx, data);
    }

    /// Writes the hash this engine began into `out` (`Nh` bytes).
    fn hash_finish(alg: HashAlg, ctx: &mut HashContext, out: &mut [u8]) {
        let _ = (alg, ctx, out);
    }

    /// `AEAD.Seal` of `alg` in place: encrypts `buf` and returns the tag.
    fn aead_seal(
        alg: AeadAlg,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        fallback::aead_seal(alg, key, nonce, aad, buf)
    }

    /// `AEAD.Open` of `alg` in place: checks `tag`, decrypts `buf`.
    fn aead_open(alg: AeadAlg, key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        fallback::aead_open(alg, key, nonce, aad, buf, tag)
    }

    /// `DH(sk, pk)` of `kem` into `out` (`Ndh` bytes; lengths checked by the
    /// core). Refuses a public key that is not a valid serialization.
    fn dh(kem: Kem, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        fallback::dh(kem, sk, pk, out)
    }

    /// The serialized public key of `sk` (`Npk` bytes into `out`).
    fn public_key(kem: Kem, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        fallback::public_key(kem, sk, out)
    }

    /// `DH(sk, pk)` with a private key the engine holds, named by `handle`
    /// (what [`super::hpke::HpkePrivateKey::held`] was given: a slot, a key
    /// ID). The default holds no key.
    fn held_dh(kem: Kem, handle: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        let _ = (kem, handle, pk, out);
        Err(CryptoError::InvalidKey)
    }

    /// Verifies `signature` by `public_key` over the concatenation of
    /// `message_parts` (the encoded `SignContent`), accepting exactly what
    /// [`super::signature`] accepts.
    fn verify(scheme: Scheme, public_key: &[u8], message_parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        fallback::verify(scheme, public_key, message_parts, signature)
    }
}

/// The RustCrypto implementations, for an engine that handles some cases
/// of a method itself and leaves the others to software (AES-128 in
/// hardware, AES-256 not).
pub mod fallback {
    use super::super::software;
    use super::{AEAD_TAG_LEN, AeadAlg, CryptoError, Kem, Scheme};

    /// [`super::CryptoEngine::aead_seal`] in software.
    pub fn aead_seal(
        alg: AeadAlg,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        software::aead_seal(alg, key, nonce, aad, buf)
    }

    /// [`super::CryptoEngine::aead_open`] in software.
    pub fn aead_open(alg: AeadAlg, key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        software::aead_open(alg, key, nonce, aad, buf, tag)
    }

    /// [`super::CryptoEngine::dh`] in software.
    pub fn dh(kem: Kem, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        kem.software_dh(sk, pk, out)
    }

    /// [`super::CryptoEngine::public_key`] in software.
    pub fn public_key(kem: Kem, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        kem.software_public_key(sk, out)
    }

    /// [`super::CryptoEngine::verify`] in software.
    pub fn verify(scheme: Scheme, public_key: &[u8], message_parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        scheme.software_verify(public_key, message_parts, signature)
    }
}

/// Defines the functions the core calls (feature `engine`) with the methods
/// of `$engine`, a type that implements
/// [`CryptoEngine`](crate::crypto::engine::CryptoEngine). Write it once in
/// the program (the firmware's or the test's crate).
#[macro_export]
macro_rules! crypto_engine {
    ($engine:ty) => {
        const _: () = {
            use $crate::crypto::dhkem::Kem;
            use $crate::crypto::engine::{CryptoEngine, HashContext};
            use $crate::crypto::signature::Scheme;
            use $crate::crypto::{AeadAlg, CryptoError, HashAlg};

            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_hash_start(alg: HashAlg, ctx: &mut HashContext) -> bool {
                <$engine as CryptoEngine>::hash_start(alg, ctx)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_hash_update(alg: HashAlg, ctx: &mut HashContext, data: &[u8]) {
                <$engine as CryptoEngine>::hash_update(alg, ctx, data)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_hash_finish(alg: HashAlg, ctx: &mut HashContext, out: &mut [u8]) {
                <$engine as CryptoEngine>::hash_finish(alg, ctx, out)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_aead_seal(
                alg: AeadAlg,
                key: &[u8],
                nonce: &[u8],
                aad: &[u8],
                buf: &mut [u8],
            ) -> Result<[u8; 16], CryptoError> {
                <$engine as CryptoEngine>::aead_seal(alg, key, nonce, aad, buf)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_aead_open(
                alg: AeadAlg,
                key: &[u8],
                nonce: &[u8],
                aad: &[u8],
                buf: &mut [u8],
                tag: &[u8],
            ) -> Result<(), CryptoError> {
                <$engine as CryptoEngine>::aead_open(alg, key, nonce, aad, buf, tag)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_dh(kem: Kem, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
                <$engine as CryptoEngine>::dh(kem, sk, pk, out)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_public_key(kem: Kem, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
                <$engine as CryptoEngine>::public_key(kem, sk, out)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_held_dh(kem: Kem, handle: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
                <$engine as CryptoEngine>::held_dh(kem, handle, pk, out)
            }
            #[unsafe(no_mangle)]
            fn __mls_nostd_engine_1_verify(
                scheme: Scheme,
                public_key: &[u8],
                message_parts: &[&[u8]],
                signature: &[u8],
            ) -> Result<(), CryptoError> {
                <$engine as CryptoEngine>::verify(scheme, public_key, message_parts, signature)
            }
        };
    };
}

/// The functions `crypto_engine!` defines, as the core calls them. The
/// signatures here and in the macro are the same text; the `_1` in the
/// names changes with any change of them.
#[allow(unsafe_code)]
mod link {
    use super::{AEAD_TAG_LEN, AeadAlg, CryptoError, HashAlg, HashContext, Kem, Scheme};

    unsafe extern "Rust" {
        pub(crate) safe fn __mls_nostd_engine_1_hash_start(alg: HashAlg, ctx: &mut HashContext) -> bool;
        pub(crate) safe fn __mls_nostd_engine_1_hash_update(alg: HashAlg, ctx: &mut HashContext, data: &[u8]);
        pub(crate) safe fn __mls_nostd_engine_1_hash_finish(alg: HashAlg, ctx: &mut HashContext, out: &mut [u8]);
        pub(crate) safe fn __mls_nostd_engine_1_aead_seal(
            alg: AeadAlg,
            key: &[u8],
            nonce: &[u8],
            aad: &[u8],
            buf: &mut [u8],
        ) -> Result<[u8; AEAD_TAG_LEN], CryptoError>;
        pub(crate) safe fn __mls_nostd_engine_1_aead_open(
            alg: AeadAlg,
            key: &[u8],
            nonce: &[u8],
            aad: &[u8],
            buf: &mut [u8],
            tag: &[u8],
        ) -> Result<(), CryptoError>;
        pub(crate) safe fn __mls_nostd_engine_1_dh(kem: Kem, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError>;
        pub(crate) safe fn __mls_nostd_engine_1_public_key(kem: Kem, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError>;
        pub(crate) safe fn __mls_nostd_engine_1_held_dh(kem: Kem, handle: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError>;
        pub(crate) safe fn __mls_nostd_engine_1_verify(
            scheme: Scheme,
            public_key: &[u8],
            message_parts: &[&[u8]],
            signature: &[u8],
        ) -> Result<(), CryptoError>;
    }

    pub(crate) use __mls_nostd_engine_1_aead_open as aead_open;
    pub(crate) use __mls_nostd_engine_1_aead_seal as aead_seal;
    pub(crate) use __mls_nostd_engine_1_dh as dh;
    pub(crate) use __mls_nostd_engine_1_hash_finish as hash_finish;
    pub(crate) use __mls_nostd_engine_1_hash_start as hash_start;
    pub(crate) use __mls_nostd_engine_1_hash_update as hash_update;
    pub(crate) use __mls_nostd_engine_1_held_dh as held_dh;
    pub(crate) use __mls_nostd_engine_1_public_key as public_key;
    pub(crate) use __mls_nostd_engine_1_verify as verify;
}

pub(super) use link::{aead_open, aead_seal, dh, held_dh, public_key, verify};

/// The core's side of the engine: the same functions as
/// [`super::software`]'s, through the engine's link.
pub(super) mod backend {
    use super::super::software;
    use super::{HashAlg, HashContext, link};

    pub(in super::super) use super::{aead_open, aead_seal};
    #[cfg(feature = "_sha256")]
    pub(in super::super) use digest_types::Sha256;
    pub(in super::super) use digest_types::{Hkdf, HkdfExtract, Hmac};
    #[cfg(feature = "_sha384")]
    pub(in super::super) use digest_types::Sha384;
    #[cfg(feature = "_sha512")]
    pub(in super::super) use digest_types::Sha512;

    /// A running hash: the engine's, or the software's if the engine
    /// declined it.
    #[derive(Clone)]
    pub enum HashState {
        /// Begun by the engine.
        Engine(HashAlg, HashContext),
        /// Left to software.
        Software(software::HashState),
    }

    pub fn hash_start(alg: HashAlg) -> HashState {
        let mut ctx = HashContext::ZERO;
        if link::hash_start(alg, &mut ctx) {
            HashState::Engine(alg, ctx)
        } else {
            HashState::Software(software::hash_start(alg))
        }
    }

    /// The store's SHA-256 (`crypto::sha256`): through the engine when a
    /// suite hashes with SHA-256, in software otherwise.
    pub fn sha256_start() -> HashState {
        #[cfg(feature = "_sha256")]
        return hash_start(HashAlg::Sha256);
        #[cfg(not(feature = "_sha256"))]
        HashState::Software(software::sha256_start())
    }

    pub fn hash_update(state: &mut HashState, data: &[u8]) {
        match state {
            HashState::Engine(alg, ctx) => link::hash_update(*alg, ctx, data),
            HashState::Software(s) => software::hash_update(s, data),
        }
    }

    pub fn hash_finish(state: HashState, out: &mut [u8]) -> usize {
        match state {
            HashState::Engine(alg, mut ctx) => {
                let len = alg.output_len();
                match out.get_mut(..len) {
                    Some(o) => {
                        link::hash_finish(alg, &mut ctx, o);
                        len
                    }
                    None => 0,
                }
            }
            HashState::Software(s) => software::hash_finish(s, out),
        }
    }

    /// The suite hashes as `digest` types, so that the `hmac` and `hkdf`
    /// crates build HMAC and HKDF on the engine's hash.
    mod digest_types {
        use super::{HashAlg, HashState, hash_finish, hash_start, hash_update};
        use hmac::digest::common::BlockSizeUser;
        use hmac::digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update};

        pub type Hkdf<D> = hkdf::SimpleHkdf<D>;
        pub type HkdfExtract<D> = hkdf::SimpleHkdfExtract<D>;
        pub type Hmac<D> = hmac::SimpleHmac<D>;

        macro_rules! engine_digest {
            ($name:ident, $alg:expr, $out:ty, $block:ty) => {
                /// The suite's hash through the engine.
                #[derive(Clone)]
                pub struct $name(HashState);
                impl Default for $name {
                    fn default() -> Self {
                        Self(hash_start($alg))
                    }
                }
                impl HashMarker for $name {}
                impl OutputSizeUser for $name {
                    type OutputSize = $out;
                }
                impl BlockSizeUser for $name {
                    type BlockSize = $block;
                }
                impl Update for $name {
                    fn update(&mut self, data: &[u8]) {
                        hash_update(&mut self.0, data)
                    }
                }
                impl FixedOutput for $name {
                    fn finalize_into(self, out: &mut Output<Self>) {
                        hash_finish(self.0, out);
                    }
                }
            };
        }

        #[cfg(feature = "_sha256")]
        engine_digest!(Sha256, HashAlg::Sha256, hmac::digest::consts::U32, hmac::digest::consts::U64);
        #[cfg(feature = "_sha384")]
        engine_digest!(Sha384, HashAlg::Sha384, hmac::digest::consts::U48, hmac::digest::consts::U128);
        #[cfg(feature = "_sha512")]
        engine_digest!(Sha512, HashAlg::Sha512, hmac::digest::consts::U64, hmac::digest::consts::U128);
    }
}
