//! The ratchet tree (RFC 9420 §4, §7): nodes, storage with compile-time
//! capacity, tree and parent hashes, validation and TreeKEM.

pub mod hashes;
pub(crate) mod marks;
pub mod node;
pub mod tree;
pub mod treekem;
pub mod update_path;
pub mod validate;
