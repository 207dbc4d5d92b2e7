//! Welcome messages (RFC 9420 §12.4.3.1): `Welcome`, `EncryptedGroupSecrets`
//! and the `GroupSecrets` (with `PathSecret`) sealed to each new member, as
//! wire views. Creating and opening them: [`super::welcome_secrets`].

use crate::psk::PreSharedKeyId;

use super::commit::HpkeCiphertext;
use crate::codec::ListView;

/// `EncryptedGroupSecrets` (§12.4.3.1): the GroupSecrets of one new member,
/// sealed to the `init_key` of its KeyPackage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncryptedGroupSecrets<'a> {
    /// `KeyPackageRef new_member`: `MakeKeyPackageRef` of the member's
    /// KeyPackage (§5.2).
    pub new_member: &'a [u8],
    /// `HPKECiphertext encrypted_group_secrets`: `EncryptWithLabel(init_key,
    /// "Welcome", encrypted_group_info, GroupSecrets)`.
    pub encrypted_group_secrets: HpkeCiphertext<'a>,
}
crate::tls_struct!(EncryptedGroupSecrets<'a> { new_member, encrypted_group_secrets });

/// `Welcome` (§12.4.3.1): what a new member needs to join the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome<'a> {
    /// `CipherSuite cipher_suite` (raw: any suite decodes).
    pub cipher_suite: u16,
    /// `EncryptedGroupSecrets secrets<V>`, one per new member.
    pub secrets: ListView<'a, EncryptedGroupSecrets<'a>>,
    /// `opaque encrypted_group_info<V>`: the GroupInfo sealed with the
    /// welcome key and nonce.
    pub encrypted_group_info: &'a [u8],
}
crate::tls_struct!(Welcome<'a> { cipher_suite, secrets, encrypted_group_info });

impl<'a> Welcome<'a> {
    /// The first entry of `secrets` addressed to `key_package_ref`
    /// (`new_member`, §12.4.3.1), if any.
    pub fn secrets_for(&self, key_package_ref: &[u8]) -> Option<EncryptedGroupSecrets<'a>> {
        self.secrets.iter().find(|e| e.new_member == key_package_ref)
    }
}

/// `PathSecret` (§12.4.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathSecret<'a> {
    /// `opaque path_secret<V>`.
    pub path_secret: &'a [u8],
}
crate::tls_struct!(PathSecret<'a> { path_secret });

/// `GroupSecrets` (§12.4.3.1): the plaintext of one `encrypted_group_secrets`.
///
/// It borrows secrets from the decrypted buffer: the owner of that buffer
/// must zeroize it once the secrets are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSecrets<'a> {
    /// `opaque joiner_secret<V>`.
    pub joiner_secret: &'a [u8],
    /// `optional<PathSecret> path_secret`: the secret of the lowest common
    /// ancestor of the committer and the new member, if the Commit had a path.
    pub path_secret: Option<PathSecret<'a>>,
    /// `PreSharedKeyID psks<V>`: the PSKs of the epoch.
    pub psks: ListView<'a, PreSharedKeyId<'a>>,
}
crate::tls_struct!(GroupSecrets<'a> { joiner_secret, path_secret, psks });
