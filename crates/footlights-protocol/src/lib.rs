//! Footlights wire types: the values actors exchange, the errors clients see, actor keys and ids,
//! and the messages of the realtime protocol.
//!
//! This crate does no I/O. Everything here is plain data plus conversions, so the server, the
//! clients and the actor runtime all agree on one vocabulary.
//!
//! ```
//! use footlights_protocol::{ActorKey, Value, to_value, from_value};
//!
//! let key = ActorKey::from(["room", "general"]);
//! assert_eq!(key.to_string(), "room/general");
//!
//! let v: Value = to_value(&(1, "two")).unwrap();
//! let back: (i64, String) = from_value(v).unwrap();
//! assert_eq!(back, (1, "two".to_owned()));
//! ```
//!
//! What this crate is:
//! - the [`Value`] model user data travels in, with serde conversions ([`to_value`], [`from_value`]);
//! - [`ActionError`], the error every client sees, with a stable `group` and `code`;
//! - [`ActorKey`] and [`ActorId`], how actors are addressed;
//! - the [`Action`] and [`Event`] specs typed APIs are built on;
//! - [`ToClient`] / [`ToServer`], the realtime messages, and [`SharedEvent`], an event encoded
//!   once for every connection it goes to.
//!
//! What it is not: a transport. Framing on a socket belongs to the server and client crates.

mod action;
mod broadcast;
pub mod codec;
mod error;
mod ids;
mod key;
mod message;
mod value;

pub use action::{Action, ActorSpec, Event, args_from_value, args_to_value};
pub use broadcast::SharedEvent;
pub use error::{ActionError, INTERNAL_MESSAGE};
pub use ids::{ActorId, ConnId};
pub use key::ActorKey;
pub use message::{ToClient, ToServer};
pub use value::{Value, ValueError, from_value, from_value_exact, to_value, to_value_exact};
