//! The suite-3 cases of the official test vectors (`tests/data/test-vectors/`
//! of the repository, formats in its `FORMAT.md`), generated into constants by this crate's
//! `build.rs` (with `board_scenario::vectors`).
//!
//! Labels are stored as their ASCII bytes, as the vectors give them: without
//! the `"MLS 1.0 "` prefix (the core adds it), except `ref_hash.label`, which
//! RefHash uses as is. `Exporter::label` looks like hex but is ASCII too.

/// `crypto-basics.json`: one case.
pub struct CryptoBasics {
    pub ref_hash: RefHash,
    pub expand_with_label: ExpandWithLabel,
    pub derive_secret: DeriveSecret,
    pub derive_tree_secret: DeriveTreeSecret,
    pub sign_with_label: SignWithLabel,
    pub encrypt_with_label: EncryptWithLabel,
}

pub struct RefHash {
    pub label: &'static [u8],
    pub value: &'static [u8],
    pub out: &'static [u8],
}

pub struct ExpandWithLabel {
    pub secret: &'static [u8],
    pub label: &'static [u8],
    pub context: &'static [u8],
    pub length: u16,
    pub out: &'static [u8],
}

pub struct DeriveSecret {
    pub secret: &'static [u8],
    pub label: &'static [u8],
    pub out: &'static [u8],
}

pub struct DeriveTreeSecret {
    pub secret: &'static [u8],
    pub label: &'static [u8],
    pub generation: u32,
    pub length: u16,
    pub out: &'static [u8],
}

pub struct SignWithLabel {
    pub private: &'static [u8],
    pub public: &'static [u8],
    pub content: &'static [u8],
    pub label: &'static [u8],
    pub signature: &'static [u8],
}

pub struct EncryptWithLabel {
    pub private: &'static [u8],
    pub public: &'static [u8],
    pub label: &'static [u8],
    pub context: &'static [u8],
    pub plaintext: &'static [u8],
    pub kem_output: &'static [u8],
    /// The HPKE ciphertext: encrypted plaintext followed by the 16-byte AEAD tag.
    pub ciphertext: &'static [u8],
}

/// `key-schedule.json`: one group over several epochs.
pub struct KeySchedule {
    pub group_id: &'static [u8],
    pub initial_init_secret: &'static [u8],
    pub epochs: &'static [Epoch],
}

pub struct Epoch {
    // Chosen by the generator.
    pub tree_hash: &'static [u8],
    pub commit_secret: &'static [u8],
    pub psk_secret: &'static [u8],
    pub confirmed_transcript_hash: &'static [u8],
    // Computed.
    pub group_context: &'static [u8],
    pub joiner_secret: &'static [u8],
    pub welcome_secret: &'static [u8],
    pub init_secret: &'static [u8],
    pub sender_data_secret: &'static [u8],
    pub encryption_secret: &'static [u8],
    pub exporter_secret: &'static [u8],
    pub epoch_authenticator: &'static [u8],
    pub external_secret: &'static [u8],
    pub confirmation_key: &'static [u8],
    pub membership_key: &'static [u8],
    pub resumption_psk: &'static [u8],
    pub external_pub: &'static [u8],
    pub exporter: Exporter,
}

pub struct Exporter {
    pub label: &'static [u8],
    pub context: &'static [u8],
    pub length: u32,
    pub secret: &'static [u8],
}

/// `secret-tree.json`: one tree.
pub struct SecretTreeCase {
    pub sender_data: SenderData,
    pub encryption_secret: &'static [u8],
    /// Per leaf, the generations to check.
    pub leaves: &'static [&'static [LeafGeneration]],
}

pub struct SenderData {
    pub sender_data_secret: &'static [u8],
    pub ciphertext: &'static [u8],
    pub key: &'static [u8],
    pub nonce: &'static [u8],
}

pub struct LeafGeneration {
    pub generation: u32,
    pub handshake_key: &'static [u8],
    pub handshake_nonce: &'static [u8],
    pub application_key: &'static [u8],
    pub application_nonce: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/vectors.rs"));
