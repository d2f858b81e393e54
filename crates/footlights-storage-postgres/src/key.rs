//! The sortable byte form of actor keys stored in `actors.key_sort`: the shared
//! [`footlights_storage::key_order`] encoding, so every driver orders and lists keys alike.

pub(crate) use footlights_storage::key_order::{CorruptKey, decode, encode};
