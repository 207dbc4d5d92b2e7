//! User guide: a group's life, from creation to removal.
//!
//! Every size is fixed at compile time: a [`Group`](crate::group::Group) has
//! room for `N` leaves, `ARENA` bytes of leaf encodings, `K` out-of-order
//! message keys and `P` bytes of pending proposals. Keep groups in `static`s
//! (or, on a host, in a `Box`) starting from [`Group::EMPTY`](crate::group::Group::EMPTY),
//! so their state is never built on the stack; it is all zero bytes, so a
//! `static` group lands in `.bss` and costs no flash. Randomness, time (`now`, in
//! seconds since the Unix epoch) and PSKs are passed in; messages are written
//! into buffers you provide.
//!
//! **On a device, use the group through its storage**: [`Group::stored`](crate::group::Group::stored)
//! binds it to a [`Storage`](crate::store::Storage) slot, and each operation
//! of the [`StoredGroup`](crate::store::durable::StoredGroup) saves before it
//! returns, so a reboot never reuses a key and nonce, forgets a Commit it
//! sent, or accepts a replayed message. `Group`'s own operations are named
//! `*_in_memory`: they are for hosts that save the group by other means (and
//! for tests).
//!
//! Buffer sizes are constants of the group type:
//! [`Group::commit_buffers_len`](crate::group::Group::commit_buffers_len) is
//! the one buffer of `add_member`, `remove_member` and `update`;
//! [`Group::commit_len`](crate::group::Group::commit_len),
//! [`Group::WELCOME_LEN`](crate::group::Group::WELCOME_LEN) and
//! [`Group::GROUP_INFO_LEN`](crate::group::Group::GROUP_INFO_LEN) bound each
//! message. A [`SigningIdentity`](crate::group::SigningIdentity) (suite,
//! credential, signature key, leaf lifetime) makes the parameters of
//! creating, KeyPackages and joining.
//!
//! The program below is `examples/group.rs` of this crate (`cargo run -p
//! mls-nostd --example group`; the doc tests run it too). Alice and Bob are
//! devices (a RAM store stands in for each one's flash); it names 8 of this
//! crate's types.
#![doc = concat!("```\n", include_str!("../examples/group.rs"), "```")]
