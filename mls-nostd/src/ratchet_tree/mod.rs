//! The ratchet tree (RFC 9420 §4, §7): nodes, storage with compile-time
//! capacity, tree and parent hashes, validation and TreeKEM.

pub mod node;
pub mod tree;
pub mod key_index;
pub mod hashes;
pub mod validate;
pub mod treekem;
pub mod update_path;
pub(crate) mod marks;
