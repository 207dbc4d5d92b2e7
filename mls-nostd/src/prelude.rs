//! What an application needs to create, join, message, update and remove
//! (the [guide](crate::guide)): `use mls_nostd::prelude::*;`.

pub use crate::codec::Decode;
pub use crate::credential::Credential;
pub use crate::crypto::CipherSuite;
pub use crate::crypto::signature::SignaturePrivateKey;
pub use crate::crypto::signer::Signer;
pub use crate::executor::Sequential;
pub use crate::extensions::{Extensions, U16List};
pub use crate::leaf_node::Capabilities;
pub use crate::group::{
    CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received, SigningIdentity, WireFormatPolicy,
    default_capabilities,
};
pub use crate::key_package::{KeyPackage, KeyPackageParams};
pub use crate::leaf_node::Lifetime;
pub use crate::messages::proposal::{Add, Proposal, Remove};
pub use crate::psk::NoPsks;
pub use crate::ratchet_tree::treekem::LeafTemplate;
pub use crate::store::durable::{RecordBuffer, StoredGroup, generate_key_package};
pub use crate::store::MAX_RECORD_LEN;
pub use crate::store::{Parts, RamStorage, Storage};
