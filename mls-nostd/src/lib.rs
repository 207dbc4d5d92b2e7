//! Messaging Layer Security (RFC 9420) for devices without a heap.
//!
//! `#![no_std]`, no allocator: variable-length data is borrowed from the input
//! or held in fixed-capacity containers whose sizes are compile-time constants.
//! Randomness, storage and time are passed in by the caller.
//!
//! Start with the [`guide`]: create, add, join, send, receive, update, remove.
//!
//! Layers, bottom-up (each module cites the RFC section it implements):
//! [`capacity`] (the named capacities), [`codec`] (§2.1), [`crypto`] (§5, RFC 9180), [`tree_math`] (Appendix C),
//! [`credential`], [`extensions`], [`leaf_node`], [`key_package`] (§5.3, §7.2,
//! §10, §13), [`identity`] (§5.3.1: the application's credential policy), [`ratchet_tree`] (§4, §7: tree, hashes, validation, TreeKEM),
//! [`group_context`] (§8.1), [`key_schedule`] (§8), [`psk`] (§8.4),
//! [`transcript`] (§8.2), [`secret_tree`] (§9), [`messages`] (§6, §12: wire
//! formats, message protection, Welcome), [`group`] (§11, §12: the state
//! machine). [`executor`] and [`key_store`] are what the platform injects.
#![no_std]
#![deny(missing_docs)]
// The one exception, with the feature `engine`: the declaration of the
// functions `crypto_engine!` defines (crypto::engine, module `link`).
#![cfg_attr(not(feature = "engine"), forbid(unsafe_code))]
#![cfg_attr(feature = "engine", deny(unsafe_code))]
// No panics on any input (docs/architecture.md, decision 7): enforced by clippy outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

pub mod capacity;
pub mod codec;
pub mod credential;
pub mod crypto;
pub mod delivery;
pub mod executor;
pub mod extensions;
pub mod leaf_node;
pub mod messages;
pub mod group;
pub mod group_context;
pub mod guide;
pub mod identity;
pub mod key_package;
pub mod key_schedule;
pub mod key_store;
pub mod prelude;
pub mod psk;
pub mod ratchet_tree;
pub mod secret_tree;
pub mod store;
pub mod transcript;
pub mod tree_math;
mod zero_option;

pub use capacity::Capacity;
