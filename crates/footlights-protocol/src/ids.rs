//! Actor and connection ids.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        // A shared slice rather than a `String`: messages that carry ids (`Init` holds two) stay
        // small (every link's channel reserves room for 32 of them), and the many records that
        // name one connection or actor (its link, its resume entry, its log line...) share
        // one allocation instead of a copy each.
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an existing id.
            pub fn new(id: impl Into<String>) -> Self {
                $name(Arc::from(id.into()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(Arc::from(s))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.into())
            }
        }
    };
}

string_id! {
    /// The internal id of an actor: unique, opaque, safe in a URL path segment.
    ///
    /// A registry makes new ones as 32 lowercase hex digits of a version 7 UUID (RFC 9562):
    /// a millisecond timestamp first, so ids sort in the order the actors were created and
    /// the rows of actors made together sit side by side in the store's indexes. Treat an id
    /// as an opaque string all the same: ids from other sources keep whatever form they had.
    ActorId
}

string_id! {
    /// The id of one client connection to an actor.
    ConnId
}
