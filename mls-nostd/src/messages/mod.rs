//! The messages of MLS (RFC 9420 §6, §7.6, §12): proposals, commits, framing,
//! Welcome, GroupInfo and the MLSMessage envelope, as borrowed views.
//!
//! Every type here decodes from a byte slice without copying (variable-length
//! fields and vectors borrow from the input) and encodes back from its decoded
//! fields. Decoding checks structure only, completely: every nested vector is
//! read through when its parent is decoded, so any byte string yields a value
//! or a [`CodecError`](crate::codec::CodecError), never a panic, and iterating
//! a decoded list cannot fail. Signatures, MACs, decryption and the validity
//! rules of §12.2 belong to the layers above.
//!
//! One RFC concept per module: [`proposal`] (§12.1), [`commit`] (§12.4, §7.6),
//! [`framing`] (§6), [`welcome`] (§12.4.3.1), [`group_info`] (§12.4.3),
//! [`mls_message`] (§6). Vectors of structures are [`crate::codec::ListView`]s.

pub mod commit;
pub mod framing;
pub mod group_info;
pub mod mls_message;
pub mod proposal;
pub mod welcome;

pub use commit::{Commit, HpkeCiphertext, UpdatePath, UpdatePathNode};
pub use framing::{
    Content, ContentType, FramedContent, FramedContentAuthData, PrivateMessage, PublicMessage, Sender,
    WIRE_FORMAT_GROUP_INFO, WIRE_FORMAT_KEY_PACKAGE, WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE,
    WIRE_FORMAT_WELCOME,
};
pub use group_info::{GroupInfo, GroupInfoTbs, WireGroupContext};
pub use crate::codec::ListView;
pub use mls_message::{MlsMessage, MlsMessageBody};
pub use proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ProposalOrRef, ReInit, Remove, Update,
};
pub use welcome::{EncryptedGroupSecrets, GroupSecrets, PathSecret, Welcome};
