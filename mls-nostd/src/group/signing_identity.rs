//! Who we are in our groups: a credential, the signature key that signs
//! for it (§5.3) and the lifetime of the leaves we make, kept together so
//! that creating a group, making a KeyPackage and joining take one value.

use super::{CreateParams, JoinParams};
use crate::credential::Credential;
use crate::crypto::CipherSuite;
use crate::crypto::signature::SignaturePrivateKey;
use crate::crypto::signer::Signer;
use crate::key_package::{KeyPackage, KeyPackageBuildError, KeyPackageParams, KeyPackagePrivateKeys};
use crate::leaf_node::Lifetime;
use rand_core::CryptoRng;

/// Our credential and its signature key in one cipher suite, with the
/// lifetime of the leaves (KeyPackages, created groups) made with it. For
/// other capabilities or extensions, start from the parameters it makes.
#[derive(Debug)]
pub struct SigningIdentity<'a, Sig: Signer = SignaturePrivateKey> {
    /// The cipher suite of the signature key and of our groups.
    pub suite: CipherSuite,
    /// Our credential (§5.3).
    pub credential: Credential<'a>,
    /// Signs with the key the credential is bound to: a private key in
    /// memory, or a handle to one in a secure element.
    pub signer: &'a Sig,
    /// Validity of our leaves (seconds since the Unix epoch).
    pub lifetime: Lifetime,
}

impl<Sig: Signer> Clone for SigningIdentity<'_, Sig> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Sig: Signer> Copy for SigningIdentity<'_, Sig> {}

impl<'a, Sig: Signer> SigningIdentity<'a, Sig> {
    /// `credential`, signed for with `signer`, in `suite`, for leaves valid
    /// over `lifetime`.
    pub fn new(suite: CipherSuite, credential: Credential<'a>, signer: &'a Sig, lifetime: Lifetime) -> Self {
        Self { suite, credential, signer, lifetime }
    }

    /// [`CreateParams::new`] for the group `group_id` created by us.
    pub fn create_params(&self, group_id: &'a [u8]) -> CreateParams<'a> {
        CreateParams::new(self.suite, group_id, self.credential, self.lifetime)
    }

    /// A KeyPackage for us ([`KeyPackage::generate`] with
    /// [`KeyPackageParams::new`]): its encoding, in `out`, and its private
    /// keys.
    pub fn key_package<'o>(
        &self,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<(&'o [u8], KeyPackagePrivateKeys), KeyPackageBuildError> {
        KeyPackage::generate(&KeyPackageParams::new(self.suite, self.credential, self.lifetime), self.signer, rng, out)
    }

    /// [`JoinParams::new`] for our `key_package` and its private `keys`.
    pub fn join_params(&self, key_package: &'a [u8], keys: &'a KeyPackagePrivateKeys) -> JoinParams<'a, Sig> {
        JoinParams::new(key_package, keys, self.signer)
    }
}
