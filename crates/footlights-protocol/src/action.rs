//! Specs for typed actions and events.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ActionError;
use crate::value::{Value, ValueError, from_value, from_value_exact, to_value, to_value_exact};

/// A typed action: its wire name, its arguments (the struct itself) and its output.
///
/// `#[footlights::actor]` generates one per `#[action]` method; they can be written by hand.
/// Arguments travel as a positional list, in declaration order.
///
/// ```
/// use footlights_protocol::{Action, ActionError, Value, from_value, to_value};
///
/// struct Increment { amount: i64 }
///
/// impl Action for Increment {
///     const NAME: &'static str = "increment";
///     type Output = i64;
///     fn into_args(self) -> Result<Vec<Value>, ActionError> {
///         Ok(vec![to_value(&self.amount)?])
///     }
///     fn from_args(args: Vec<Value>) -> Result<Self, ActionError> {
///         let mut args = args.into_iter();
///         Ok(Increment { amount: from_value(args.next().unwrap_or_default())? })
///     }
/// }
/// assert_eq!(Increment { amount: 5 }.into_args().unwrap(), vec![Value::Int(5)]);
/// ```
pub trait Action: Sized + Send + 'static {
    /// The wire name (lowerCamelCase of the Rust method name unless overridden).
    const NAME: &'static str;
    /// What the action returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The positional argument list sent to the actor.
    ///
    /// # Errors
    /// When an argument cannot be serialized.
    fn into_args(self) -> Result<Vec<Value>, ActionError>;

    /// Reads the positional argument list. Missing trailing arguments read as `null`, so
    /// optional parameters may be left out.
    ///
    /// # Errors
    /// `actor.invalid_request` when an argument has the wrong shape.
    fn from_args(args: Vec<Value>) -> Result<Self, ActionError>;
}

/// A typed event: its wire name and payload.
///
/// Events travel as an argument list. By default the event value is the single argument;
/// `#[derive(Event)]` on a tuple struct with several fields spreads them into several arguments,
/// and on a struct without fields sends none.
pub trait Event: Serialize + DeserializeOwned + Send + 'static {
    /// The wire name.
    const NAME: &'static str;

    /// The argument list sent to subscribers.
    ///
    /// # Errors
    /// When the event cannot be serialized.
    fn to_args(&self) -> Result<Vec<Value>, ValueError> {
        Ok(vec![to_value_exact(self)?])
    }

    /// Reads the argument list back.
    ///
    /// # Errors
    /// When the arguments do not have the event's shape.
    fn from_args(args: Vec<Value>) -> Result<Self, ValueError> {
        let mut args = args;
        if args.len() == 1 {
            from_value_exact(args.pop().unwrap_or_default())
        } else {
            from_value_exact(Value::Array(args))
        }
    }
}

/// Serializes a tuple (or any sequence) into a positional argument list.
///
/// ```
/// use footlights_protocol::{Value, args_to_value};
/// assert_eq!(args_to_value(&(1, "a")).unwrap(), vec![Value::Int(1), Value::from("a")]);
/// ```
///
/// # Errors
/// When the value does not serialize to a sequence.
pub fn args_to_value<T: Serialize + ?Sized>(args: &T) -> Result<Vec<Value>, ValueError> {
    match to_value(args)? {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![other]),
    }
}

/// Reads a positional argument list into a tuple.
///
/// # Errors
/// When the arguments do not match `T`.
pub fn args_from_value<T: DeserializeOwned>(args: Vec<Value>) -> Result<T, ValueError> {
    from_value(Value::Array(args))
}

/// What clients need to know of an actor type: its registered name and its create input.
///
/// `#[footlights::actor]` implements it; the server-side behaviour lives in
/// `footlights_core::Actor`.
///
/// ```
/// use footlights_protocol::ActorSpec;
/// struct Counter;
/// impl ActorSpec for Counter {
///     const NAME: &'static str = "counter";
///     type Input = ();
/// }
/// assert_eq!(Counter::NAME, "counter");
/// ```
pub trait ActorSpec: 'static {
    /// The name the actor type is registered and addressed under, such as `chatRoom`.
    const NAME: &'static str;
    /// The input given to `create` / `get_or_create`, handed to the actor's state
    /// constructor on first creation. `()` when the actor takes none.
    type Input: Serialize + DeserializeOwned + Send + Sync + 'static;
}
