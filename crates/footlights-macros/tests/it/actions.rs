//! The generated `Action` structs: names, positional arguments, and handler kinds.

use footlights::__private::core::{Actor, DeferredHandler, Handler, ReadHandler};
use footlights::__private::protocol::{Action, ActorSpec, Value};

use crate::{ChatRoom, Counter, chat_room_actions, counter_actions};

#[test]
fn actor_names_default_to_lower_camel_case() {
    assert_eq!(<Counter as ActorSpec>::NAME, "counter");
    assert_eq!(<ChatRoom as ActorSpec>::NAME, "room");
    let input: <ChatRoom as ActorSpec>::Input = String::from("topic");
    assert_eq!(input, "topic");
}

#[test]
fn action_names_follow_the_method_names() {
    assert_eq!(counter_actions::Increment::NAME, "increment");
    assert_eq!(counter_actions::GetCount::NAME, "getCount");
    assert_eq!(chat_room_actions::Messages::NAME, "history");
    assert_eq!(chat_room_actions::WaitForNext::NAME, "waitForNext");
}

#[test]
fn arguments_are_positional_in_declaration_order() {
    let args = chat_room_actions::Send {
        text: "hi".into(),
        reply_to: Some(3),
    }
    .into_args()
    .unwrap();
    assert_eq!(args, vec![Value::from("hi"), Value::Int(3)]);
    assert_eq!(
        counter_actions::GetCount {}.into_args().unwrap(),
        Vec::<Value>::new()
    );

    let m = counter_actions::Increment::from_args(vec![Value::Int(5)]).unwrap();
    assert_eq!(m.amount, 5);
}

#[test]
fn missing_trailing_arguments_read_as_null() {
    let m = chat_room_actions::Send::from_args(vec![Value::from("hi")]).unwrap();
    assert_eq!((m.text.as_str(), m.reply_to), ("hi", None));
}

#[test]
fn wrong_arguments_are_invalid_requests() {
    let e = counter_actions::Increment::from_args(vec![Value::from("five")]).unwrap_err();
    assert_eq!((e.group(), e.code()), ("actor", "invalid_request"));
    assert!(e.message().contains("amount"), "{}", e.message());

    let e = counter_actions::Increment::from_args(Vec::new()).unwrap_err();
    assert_eq!(e.code(), "invalid_request");
}

#[test]
fn a_missing_argument_is_named_with_its_position_and_type() {
    let e = counter_actions::Increment::from_args(Vec::new()).unwrap_err();
    assert_eq!(
        e.message(),
        "missing argument 1 `amount` of action `increment` (i64)"
    );

    let e = chat_room_actions::Send::from_args(Vec::new()).unwrap_err();
    assert_eq!(
        e.message(),
        "missing argument 1 `text` of action `send` (String)"
    );
}

#[test]
fn a_wrong_argument_is_named_with_its_position_and_type() {
    let e = chat_room_actions::Send::from_args(vec![Value::from("hi"), Value::from("three")])
        .unwrap_err();
    assert!(
        e.message()
            .starts_with("argument 2 `reply_to` of action `send` (Option<u64>): "),
        "{}",
        e.message()
    );
}

fn write<A: Handler<M>, M: Action>() {}
fn read<A: ReadHandler<M>, M: Action>() {}
fn deferred<A: DeferredHandler<M>, M: Action>() {}
fn output<M: Action<Output = O>, O>() {}

#[test]
fn receivers_and_results_pick_the_handler() {
    write::<Counter, counter_actions::Increment>();
    read::<Counter, counter_actions::GetCount>();
    write::<ChatRoom, chat_room_actions::Send>();
    read::<ChatRoom, chat_room_actions::Messages>();
    write::<ChatRoom, chat_room_actions::Clear>();
    deferred::<ChatRoom, chat_room_actions::WaitForNext>();
    deferred::<ChatRoom, chat_room_actions::TryWait>();
    read::<ChatRoom, chat_room_actions::Snapshot>();

    output::<counter_actions::Increment, i64>();
    output::<chat_room_actions::Send, u64>();
    output::<chat_room_actions::Clear, ()>();
    output::<chat_room_actions::WaitForNext, String>();
    output::<chat_room_actions::TryWait, u32>();
    output::<chat_room_actions::Snapshot, ChatRoom>();
}

#[test]
fn action_structs_debug_without_their_fields() {
    let m = counter_actions::Increment { amount: 1 };
    assert_eq!(format!("{m:?}"), "Increment { .. }");
}

#[test]
fn plain_methods_stay_inherent() {
    let room = ChatRoom {
        messages: vec!["a".into()],
    };
    assert_eq!(room.len(), 1);
    fn is_actor<A: Actor>() {}
    is_actor::<ChatRoom>();
}
