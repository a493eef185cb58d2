//! Dedup: PURE content hashing (+ SimHash) and the `Seen` stores (memory, Redis).

pub mod hash;

pub use hash::content_hash;
