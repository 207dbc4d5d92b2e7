//! Commits (RFC 9420 §12.4) and the UpdatePath they may carry (§7.6):
//! `HPKECiphertext`, `UpdatePathNode`, `UpdatePath` and `Commit`.

use crate::codec::ListView;
use super::proposal::ProposalOrRef;

pub use crate::ratchet_tree::update_path::{HpkeCiphertext, UpdatePath, UpdatePathNode};

/// `Commit` (§12.4): the proposals it applies and, when required or chosen,
/// an UpdatePath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit<'a> {
    /// `ProposalOrRef proposals<V>`, in the order they are applied.
    pub proposals: ListView<'a, ProposalOrRef<'a>>,
    /// `optional<UpdatePath> path`.
    pub path: Option<UpdatePath<'a>>,
}
crate::tls_struct!(Commit<'a> { proposals, path });
