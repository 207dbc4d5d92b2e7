//! UpdatePath (RFC 9420 §7.6) on the wire: `HPKECiphertext`,
//! `UpdatePathNode` and `UpdatePath`.

use crate::leaf_node::LeafNode;
use crate::codec::{ListView, Reader};

/// `HPKECiphertext` (§7.6): the output of `EncryptWithLabel` (§5.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpkeCiphertext<'a> {
    /// `opaque kem_output<V>`: the HPKE encapsulated key.
    pub kem_output: &'a [u8],
    /// `opaque ciphertext<V>`: the AEAD ciphertext.
    pub ciphertext: &'a [u8],
}
crate::tls_struct!(HpkeCiphertext<'a> { kem_output, ciphertext });

/// `UpdatePathNode` (§7.6): a new public key on the committer's filtered
/// direct path, and its path secret encrypted to each node of the
/// corresponding copath node's resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdatePathNode<'a> {
    /// `HPKEPublicKey encryption_key`.
    pub encryption_key: &'a [u8],
    /// `HPKECiphertext encrypted_path_secret<V>`, one per resolution node, in
    /// resolution order.
    pub encrypted_path_secret: ListView<'a, HpkeCiphertext<'a>>,
}
crate::tls_struct!(UpdatePathNode<'a> { encryption_key, encrypted_path_secret });

/// `UpdatePath` (§7.6): the committer's new leaf and the new keys of its
/// filtered direct path, leaf to root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdatePath<'a> {
    /// The committer's new leaf (source `commit`).
    pub leaf_node: LeafNode<'a>,
    /// `UpdatePathNode nodes<V>`.
    pub nodes: ListView<'a, UpdatePathNode<'a>>,
}
crate::tls_struct!(UpdatePath<'a> { leaf_node, nodes });

impl<'a> UpdatePath<'a> {
    /// The nodes' encryption keys, leaf to root, without decoding their
    /// ciphertext lists (each decode walks its list: 10,000 ciphertexts in
    /// a sparse tree of 10,000). The list was checked when decoded.
    pub fn node_keys(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader::new(self.nodes.body());
        core::iter::from_fn(move || {
            let key = r.read_opaque().ok()?;
            r.read_opaque().ok()?;
            Some(key)
        })
    }
}
