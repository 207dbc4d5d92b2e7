//! User guide: a group's life, from creation to removal.
//!
//! Every size is fixed at compile time: a [`Group`](crate::group::Group) has
//! room for `N` leaves, `ARENA` bytes of leaf encodings, `K` out-of-order
//! message keys and `P` bytes of pending proposals. Keep groups in `static`s
//! (or, on a host, in a `Box`) starting from [`Group::EMPTY`](crate::group::Group::EMPTY),
//! so their state is never built on the stack. Randomness, time (`now`, in
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
//! The program below is `examples/group.rs` of this crate (`cargo run -p
//! mls-nostd --example group`; the doc tests run it too). Alice is a device
//! (a RAM store stands in for flash), Bob a host.
#![doc = concat!("```\n", include_str!("../examples/group.rs"), "```")]
