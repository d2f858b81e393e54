//! The generated client trait: one typed method per action, on anything that can call actions.

use std::future::Future;
use std::sync::Mutex;

use footlights::__private::client::ActionCaller;
use footlights::__private::protocol::{Action, ActionError, ActorSpec, Value, from_value};
use futures::executor::block_on;

use crate::{ChatRoomActions, CounterActions};

/// Records every call and answers with a fixed value.
struct Recorder {
    calls: Mutex<Vec<(&'static str, Vec<Value>)>>,
    reply: Value,
}

impl Recorder {
    fn new(reply: Value) -> Self {
        Recorder {
            calls: Mutex::new(Vec::new()),
            reply,
        }
    }

    fn calls(&self) -> Vec<(&'static str, Vec<Value>)> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

impl<A: ActorSpec> ActionCaller<A> for Recorder {
    fn call<M: Action>(
        &self,
        msg: M,
    ) -> impl Future<Output = Result<M::Output, ActionError>> + Send {
        let recorded = msg.into_args().map(|args| {
            self.calls
                .lock()
                .expect("not poisoned")
                .push((M::NAME, args))
        });
        let reply = self.reply.clone();
        async move {
            recorded?;
            Ok(from_value(reply)?)
        }
    }
}

#[test]
fn typed_methods_send_the_wire_name_and_arguments() {
    let counter = Recorder::new(Value::Int(6));
    assert_eq!(block_on(counter.increment(5)).unwrap(), 6);
    assert_eq!(block_on(counter.get_count()).unwrap(), 6);
    assert_eq!(
        counter.calls(),
        vec![("increment", vec![Value::Int(5)]), ("getCount", Vec::new())]
    );
}

#[test]
fn every_result_shape_decodes_its_output() {
    let room = Recorder::new(Value::Int(2));
    assert_eq!(block_on(room.send("hi".into(), None)).unwrap(), 2);
    assert_eq!(block_on(room.try_wait(false)).unwrap(), 2);
    assert_eq!(
        room.calls()[0],
        ("send", vec![Value::from("hi"), Value::Null])
    );

    let room = Recorder::new(Value::Null);
    block_on(room.clear()).unwrap();
    assert_eq!(room.calls(), vec![("clear", Vec::new())]);

    let room = Recorder::new(Value::Array(vec![Value::from("a")]));
    assert_eq!(block_on(room.messages()).unwrap(), vec!["a".to_owned()]);
    assert_eq!(room.calls()[0].0, "history");
}

#[test]
fn typed_methods_work_in_generic_code() {
    fn count_of(
        caller: &impl CounterActions,
    ) -> impl Future<Output = Result<i64, ActionError>> + Send + '_ {
        caller.get_count()
    }
    let counter = Recorder::new(Value::Int(1));
    assert_eq!(block_on(count_of(&counter)).unwrap(), 1);
}
