//! Reading what the adapters must find in messages whatever the library
//! (RFC 9420 §2.1 encodings): the GroupContext of a GroupInfo, and a
//! member's leaf index by identity in a ratchet tree. Written against the
//! RFC, independent of every library under test.

use super::{Extension, decode_extensions_body, read_opaque};

/// What a GroupInfo says about its group (§12.4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoFields {
    /// `cipher_suite`.
    pub cipher_suite: u16,
    /// `group_id`.
    pub group_id: Vec<u8>,
    /// `epoch`.
    pub epoch: u64,
    /// The GroupContext extensions.
    pub group_context_extensions: Vec<Extension>,
    /// The GroupInfo extensions (`external_pub`, `ratchet_tree`, ...).
    pub extensions: Vec<Extension>,
}

impl GroupInfoFields {
    /// The `ratchet_tree` extension's data, if there is one.
    pub fn ratchet_tree(&self) -> Option<&[u8]> {
        self.extensions.iter().find(|e| e.extension_type == 2).map(|e| e.extension_data.as_slice())
    }
}

fn u16_at(input: &mut &[u8]) -> Option<u16> {
    let (b, rest) = input.split_at_checked(2)?;
    *input = rest;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn u64_at(input: &mut &[u8]) -> Option<u64> {
    let (b, rest) = input.split_at_checked(8)?;
    *input = rest;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

fn u8_at(input: &mut &[u8]) -> Option<u8> {
    let (b, rest) = input.split_first()?;
    *input = rest;
    Some(*b)
}

/// The fields of an `MLSMessage(GroupInfo)`.
pub fn group_info(msg: &[u8]) -> Option<GroupInfoFields> {
    let mut r = msg;
    // MLSMessage: version mls10, wire format mls_group_info (4).
    if u16_at(&mut r)? != 1 || u16_at(&mut r)? != 4 {
        return None;
    }
    if u16_at(&mut r)? != 1 {
        return None; // GroupContext.version
    }
    let cipher_suite = u16_at(&mut r)?;
    let group_id = read_opaque(&mut r)?.to_vec();
    let epoch = u64_at(&mut r)?;
    read_opaque(&mut r)?; // tree_hash
    read_opaque(&mut r)?; // confirmed_transcript_hash
    let group_context_extensions = decode_extensions_body(read_opaque(&mut r)?)?;
    let extensions = decode_extensions_body(read_opaque(&mut r)?)?;
    Some(GroupInfoFields { cipher_suite, group_id, epoch, group_context_extensions, extensions })
}

/// Skips a `Credential` (§5.3); returns the identity of a basic one.
fn credential<'a>(r: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    match u16_at(r)? {
        1 => Some(Some(read_opaque(r)?)),
        2 => {
            read_opaque(r)?; // certificates
            Some(None)
        }
        _ => None,
    }
}

/// Skips a `LeafNode` (§7.2); returns its basic identity, if any.
fn leaf_node<'a>(r: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    read_opaque(r)?; // encryption_key
    read_opaque(r)?; // signature_key
    let identity = credential(r)?;
    for _ in 0..5 {
        read_opaque(r)?; // capabilities: versions, suites, extensions, proposals, credentials
    }
    match u8_at(r)? {
        1 => {
            u64_at(r)?;
            u64_at(r)?;
        }
        2 => {}
        3 => {
            read_opaque(r)?;
        }
        _ => return None,
    }
    read_opaque(r)?; // extensions
    read_opaque(r)?; // signature
    Some(identity)
}

/// The leaf index of the member whose basic credential has `identity` in
/// an encoded `optional<Node> ratchet_tree<V>` (§12.4.3.3).
pub fn leaf_by_identity(tree: &[u8], identity: &[u8]) -> Option<u32> {
    let mut outer = tree;
    let mut r = read_opaque(&mut outer)?;
    let mut node = 0u32;
    while !r.is_empty() {
        if u8_at(&mut r)? == 1 {
            match u8_at(&mut r)? {
                1 => {
                    if leaf_node(&mut r)? == Some(identity) {
                        return Some(node / 2);
                    }
                }
                2 => {
                    read_opaque(&mut r)?; // encryption_key
                    read_opaque(&mut r)?; // parent_hash
                    read_opaque(&mut r)?; // unmerged_leaves
                }
                _ => return None,
            }
        }
        node += 1;
    }
    None
}
