//! `#[derive(Event)]`: wire names, and how events travel as arguments.

use footlights::__private::protocol::{Event, Value};
use footlights::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) struct NewCount(pub i64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "moved")]
struct Position(pub i64, pub String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct MemberJoined {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct Tagged<T>(pub T, pub u8);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct RoundOver;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "tick")]
struct Tick();

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
struct Reset {}

#[test]
fn structs_without_fields_are_events_without_arguments() {
    assert_eq!(RoundOver::NAME, "roundOver");
    assert_eq!(RoundOver.to_args().unwrap(), Vec::<Value>::new());
    assert_eq!(Tick().to_args().unwrap(), Vec::<Value>::new());
    assert_eq!(Reset {}.to_args().unwrap(), Vec::<Value>::new());
    assert_eq!(RoundOver::from_args(vec![]).unwrap(), RoundOver);
    assert_eq!(Tick::from_args(vec![]).unwrap(), Tick());
    assert_eq!(Reset::from_args(vec![Value::Null]).unwrap(), Reset {});
}

#[test]
fn names_default_to_lower_camel_case() {
    assert_eq!(NewCount::NAME, "newCount");
    assert_eq!(Position::NAME, "moved");
    assert_eq!(MemberJoined::NAME, "memberJoined");
    assert_eq!(<Tagged<bool> as Event>::NAME, "tagged");
}

#[test]
fn single_values_are_one_argument() {
    assert_eq!(NewCount(5).to_args().unwrap(), vec![Value::Int(5)]);
    assert_eq!(
        NewCount::from_args(vec![Value::Int(5)]).unwrap(),
        NewCount(5)
    );
    let joined = MemberJoined { name: "ada".into() };
    let args = joined.to_args().unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(MemberJoined::from_args(args).unwrap(), joined);
}

#[test]
fn tuple_fields_spread_into_arguments() {
    let p = Position(1, "x".into());
    assert_eq!(p.to_args().unwrap(), vec![Value::Int(1), Value::from("x")]);
    assert_eq!(
        Position::from_args(vec![Value::Int(1), Value::from("x")]).unwrap(),
        p
    );
    assert!(Position::from_args(vec![Value::Int(1)]).is_err());

    let t = Tagged(true, 2);
    assert_eq!(t.to_args().unwrap(), vec![Value::Bool(true), Value::Int(2)]);
    assert_eq!(Tagged::<bool>::from_args(t.to_args().unwrap()).unwrap(), t);
}
