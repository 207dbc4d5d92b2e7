//! KeyPackage generation (RFC 9420 §10) and validation (§10.1).
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::key_package::{KeyPackage, KeyPackageError, KeyPackageParams};
use mls_nostd::leaf_node::Lifetime;

mod common;
use common::TestRng as Rng;

#[test]
fn generated_key_packages_validate() {
    for &suite in CipherSuite::ALL {
        let signer = common::signer(suite, 3);
        let params = KeyPackageParams {
            suite,
            credential: Credential::Basic { identity: b"device-17" },
            lifetime: Lifetime { not_before: 1_000, not_after: 1_000 + 86_400 },
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let mut out = [0u8; 1024];
        let (bytes, keys) = KeyPackage::generate(&params, &signer, &mut Rng(9), &mut out).unwrap();
        let kp = KeyPackage::decode_exact(bytes).unwrap();
        kp.validate(suite, 2_000, 86_400).unwrap();
        assert_eq!(kp.tbs.init_key, keys.init_key.public_key(suite).as_bytes());
        assert_eq!(kp.tbs.leaf_node.fields.encryption_key, keys.encryption_key.public_key(suite).as_bytes());
        assert_ne!(kp.tbs.init_key, kp.tbs.leaf_node.fields.encryption_key);
        // GREASE values (§13.5) are listed and must be ignored by validation.
        let caps = kp.tbs.leaf_node.fields.capabilities;
        assert!(caps.cipher_suites.iter().any(|v| v & 0x0f0f == 0x0a0a));
        // Lifetime checks against an explicit `now`.
        assert_eq!(kp.validate(suite, 999, 86_400), Err(KeyPackageError::Expired));
        assert_eq!(kp.validate(suite, 1_000 + 86_401, 86_400), Err(KeyPackageError::Expired));
        assert_eq!(kp.validate(suite, 2_000, 3_600), Err(KeyPackageError::LifetimeTooLong));
        let other = if suite == CipherSuite::ALL[0] { CipherSuite::ALL[1] } else { CipherSuite::ALL[0] };
        assert_eq!(kp.validate(other, 2_000, 86_400), Err(KeyPackageError::WrongCipherSuite));
        // A flipped signature byte.
        let mut bad = bytes.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let kp = KeyPackage::decode_exact(&bad).unwrap();
        assert_eq!(kp.validate(suite, 2_000, 86_400), Err(KeyPackageError::InvalidSignature));
    }
}
