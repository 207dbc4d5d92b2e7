//! The key schedule (RFC 9420 §8): from the previous epoch's `init_secret`, the
//! `commit_secret` and the `psk_secret` to this epoch's secrets; the exporter
//! (§8.5) and the external key pair (§8.3).
//!
//! ```text
//! init_secret_[n-1] --KDF.Extract(., commit_secret)--> ExpandWithLabel(., "joiner", GroupContext_[n], Nh)
//!   = joiner_secret --KDF.Extract(., psk_secret)--> DeriveSecret(., "welcome") = welcome_secret
//!                                                \-> ExpandWithLabel(., "epoch", GroupContext_[n], Nh)
//!   = epoch_secret --DeriveSecret(., label)--> sender data, encryption, exporter, ... , init
//! ```
//!
//! Group contexts are passed encoded, as the key schedule uses them.

use crate::crypto::hpke::{HpkePrivateKey, HpkePublicKey, derive_key_pair};
use crate::crypto::labeled::{derive_secret, expand_with_label, expand_with_label_secret, expand_with_labels};
use crate::crypto::{CipherSuite, CryptoError, Secret};

/// `joiner_secret = ExpandWithLabel(KDF.Extract(init_secret_[n-1], commit_secret),
/// "joiner", GroupContext_[n], Nh)`.
pub fn joiner_secret(
    suite: CipherSuite,
    prev_init_secret: &Secret,
    commit_secret: &Secret,
    group_context: &[u8],
) -> Result<Secret, CryptoError> {
    let prk = suite.kdf_extract(prev_init_secret.as_bytes(), &[commit_secret.as_bytes()]);
    expand_with_label_secret(suite, prk.as_bytes(), b"joiner", group_context, suite.hash_len())
}

/// `KDF.Extract(joiner_secret, psk_secret)`, the secret behind both the
/// welcome and the epoch secret.
fn member_prk(suite: CipherSuite, joiner: &Secret, psk_secret: &Secret) -> Secret {
    suite.kdf_extract(joiner.as_bytes(), &[psk_secret.as_bytes()])
}

/// `welcome_secret = DeriveSecret(KDF.Extract(joiner_secret, psk_secret), "welcome")`.
pub fn welcome_secret(suite: CipherSuite, joiner: &Secret, psk_secret: &Secret) -> Result<Secret, CryptoError> {
    derive_secret(suite, member_prk(suite, joiner, psk_secret).as_bytes(), b"welcome")
}

/// The AEAD key and nonce that protect a Welcome's GroupInfo (§12.4.3.1):
/// `ExpandWithLabel(welcome_secret, "key"/"nonce", "", Nk/Nn)`.
pub fn welcome_key_nonce(suite: CipherSuite, welcome_secret: &Secret) -> Result<(Secret, Secret), CryptoError> {
    let key = expand_with_label_secret(suite, welcome_secret.as_bytes(), b"key", &[], suite.aead_key_len())?;
    let nonce = expand_with_label_secret(suite, welcome_secret.as_bytes(), b"nonce", &[], suite.aead_nonce_len())?;
    Ok((key, nonce))
}

/// The secrets of one epoch (§8, table 4). Zeroized on drop; `epoch_secret`
/// itself is deleted as soon as these are derived.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EpochSecrets {
    /// "sender data": keys for sender data encryption (§6.3.2).
    pub sender_data_secret: Secret,
    /// "encryption": root of the secret tree (§9). A group deletes its
    /// copy once the epoch's secret tree is rooted at it (§9.2).
    pub encryption_secret: Secret,
    /// "exporter": for [`EpochSecrets::export`] (§8.5).
    pub exporter_secret: Secret,
    /// "external": for the external key pair (§8.3).
    pub external_secret: Secret,
    /// "confirm": key of the confirmation tag (§8.1).
    pub confirmation_key: Secret,
    /// "membership": key of the membership tag (§6.2).
    pub membership_key: Secret,
    /// "resumption": the resumption PSK of this epoch (§8.6).
    pub resumption_psk: Secret,
    /// "authentication": the epoch authenticator (§8.7).
    pub epoch_authenticator: Secret,
    /// "init": the next epoch's `init_secret`.
    pub init_secret: Secret,
}

impl EpochSecrets {
    /// No secrets (a group not yet created or joined).
    pub const EMPTY: Self = Self {
        sender_data_secret: Secret::EMPTY,
        encryption_secret: Secret::EMPTY,
        exporter_secret: Secret::EMPTY,
        external_secret: Secret::EMPTY,
        confirmation_key: Secret::EMPTY,
        membership_key: Secret::EMPTY,
        resumption_psk: Secret::EMPTY,
        epoch_authenticator: Secret::EMPTY,
        init_secret: Secret::EMPTY,
    };

    /// Derives an epoch's secrets from its joiner secret, PSK secret and
    /// encoded GroupContext.
    pub fn derive(
        suite: CipherSuite,
        joiner: &Secret,
        psk_secret: &Secret,
        group_context: &[u8],
    ) -> Result<Self, CryptoError> {
        let prk = member_prk(suite, joiner, psk_secret);
        let epoch = expand_with_label_secret(suite, prk.as_bytes(), b"epoch", group_context, suite.hash_len())?;
        Self::from_epoch_secret(suite, &epoch)
    }

    /// Derives the secrets of §8, table 4, from `epoch_secret`.
    pub fn from_epoch_secret(suite: CipherSuite, epoch: &Secret) -> Result<Self, CryptoError> {
        let nh = suite.hash_len();
        let mut s = Self {
            sender_data_secret: Secret::zero(nh)?,
            encryption_secret: Secret::zero(nh)?,
            exporter_secret: Secret::zero(nh)?,
            external_secret: Secret::zero(nh)?,
            confirmation_key: Secret::zero(nh)?,
            membership_key: Secret::zero(nh)?,
            resumption_psk: Secret::zero(nh)?,
            epoch_authenticator: Secret::zero(nh)?,
            init_secret: Secret::zero(nh)?,
        };
        // DeriveSecret(epoch_secret, label) = ExpandWithLabel(.., label, "", Nh),
        // three at a time from one keyed KDF (a batch's labels and outputs
        // live in its frame: three keep it small).
        let derive = |jobs: [(&[u8], &mut Secret); 3]| {
            expand_with_labels(suite, epoch.as_bytes(), jobs.map(|(label, out)| (label, &[][..], out.as_mut_bytes())))
        };
        derive([
            (b"sender data", &mut s.sender_data_secret),
            (b"encryption", &mut s.encryption_secret),
            (b"exporter", &mut s.exporter_secret),
        ])?;
        derive([(b"external", &mut s.external_secret), (b"confirm", &mut s.confirmation_key), (b"membership", &mut s.membership_key)])?;
        derive([(b"resumption", &mut s.resumption_psk), (b"authentication", &mut s.epoch_authenticator), (b"init", &mut s.init_secret)])?;
        Ok(s)
    }

    /// `MLS-Exporter(label, context, out.len())` (§8.5):
    /// `ExpandWithLabel(DeriveSecret(exporter_secret, label), "exported", Hash(context), length)`.
    pub fn export(&self, suite: CipherSuite, label: &[u8], context: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        let secret = derive_secret(suite, self.exporter_secret.as_bytes(), label)?;
        let context_hash = suite.hash(&[context]);
        expand_with_label(suite, secret.as_bytes(), b"exported", context_hash.as_bytes(), out)
    }

    /// The external key pair `KEM.DeriveKeyPair(external_secret)` (§8.3).
    pub fn external_key_pair(&self, suite: CipherSuite) -> Result<(HpkePrivateKey, HpkePublicKey), CryptoError> {
        derive_key_pair(suite, self.external_secret.as_bytes())
    }
}
