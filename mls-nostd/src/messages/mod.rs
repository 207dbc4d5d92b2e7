//! The messages of MLS (RFC 9420 §6, §7.6, §12): proposals, commits, framing,
//! Welcome, GroupInfo and the MLSMessage envelope, as borrowed views.
//!
//! Every type here decodes from a byte slice without copying (variable-length
//! fields and vectors borrow from the input) and encodes back from its decoded
//! fields. Decoding checks structure only, completely: every nested vector is
//! read through when its parent is decoded, so any byte string yields a value
//! or a [`CodecError`](crate::codec::CodecError), never a panic, and iterating
//! a decoded list cannot fail. The validity rules of §12.2 belong to the
//! layers above.
//!
//! One RFC concept per module: [`proposal`] (§12.1), [`commit`] (§12.4, §7.6),
//! [`framing`] (§6), [`welcome`] (§12.4.3.1), [`group_info`] (§12.4.3),
//! [`mls_message`] (§6). Vectors of structures are [`crate::codec::ListView`]s.
//! Sealing and opening a Welcome, and signing a GroupInfo: [`welcome_secrets`]
//! (§12.4.3.1) and [`group_info`] (§12.4.3).
//!
//! Message protection (§6.1–§6.3) signs, MACs and encrypts those views:
//! [`authenticated_content`] (§6, §6.1: FramedContentTBS, AuthenticatedContent,
//! membership tag), [`public_message`] (§6.2), [`private_message`] (§6.3).

pub mod authenticated_content;
pub mod commit;
pub mod framing;
pub mod group_info;
pub mod mls_message;
pub mod private_message;
pub mod proposal;
pub mod public_message;
pub mod welcome;
pub mod welcome_reader;
pub mod welcome_secrets;

pub use authenticated_content::{AuthenticatedContent, EncodedGroupContext, FramedContentTbs, ProtectionError};
pub use commit::{Commit, HpkeCiphertext, UpdatePath, UpdatePathNode};
pub use framing::{
    Content, ContentType, FramedContent, FramedContentAuthData, PrivateMessage, PublicMessage, Sender,
    WIRE_FORMAT_GROUP_INFO, WIRE_FORMAT_KEY_PACKAGE, WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE,
    WIRE_FORMAT_WELCOME,
};
pub use group_info::{GroupInfo, GroupInfoTbs, WireGroupContext};
pub use crate::codec::ListView;
pub use mls_message::{MlsMessage, MlsMessageBody};
pub use private_message::{MessageKeys, PrivateMessageKeys};
pub use proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ProposalOrRef, ReInit, Remove, Update,
};
pub use welcome::{EncryptedGroupSecrets, GroupSecrets, PathSecret, Welcome};
pub use group_info::{GROUP_INFO_TBS_LABEL, GroupInfoError};
pub use welcome_reader::{ReadWelcome, WelcomeReader};
pub use welcome_secrets::{
    DecryptedWelcome, NewMember, SignedWelcome, VerifiedWelcome, WelcomeError, WelcomeParams, WelcomeSizes,
    process_read_welcome,
    process_welcome, process_welcome_in_place,
};
