//! The connections of one actor, indexed by id, by the order they joined and by the events
//! they subscribed to.
//!
//! An actor may hold tens of thousands of connections, most of them idle. Every message looks
//! its connection up by id and every broadcast needs the subscribers of one event, so both are
//! index lookups here rather than scans: finding, adding and removing a connection cost a hash
//! lookup plus O(log n) for the join order; a broadcast visits only the subscribers of its event.
//!
//! Most actors have no connection most of the time: the tables are made with the first one and
//! let go with the last, so such an actor's index is two words.
//!
//! Generic over the connection (`C`) and the handle events are sent through (`S`, its sink), so
//! it depends on nothing else in the crate and is tested on its own.

use std::collections::{BTreeMap, HashMap, HashSet};

use footlights_protocol::ConnId;

/// Connections by id, in join order, with a subscription index: event name → the sinks of the
/// connections subscribed to it.
///
/// Invariant: an event's subscriber map holds `(seq, sink)` exactly for the connections in
/// `by_id` that have a sink and list the event in their slot's `events`; no subscriber map is
/// empty; the tables exist only while there is a connection. Checked by `ConnIndex::check` in
/// the tests.
pub(crate) struct ConnIndex<C, S> {
    /// The sequence number the next connection gets; it orders connections by join time, and
    /// keeps counting when the tables go, so none is reused while a sink of an earlier
    /// connection could still be around.
    next_seq: u64,
    tables: Option<Box<Tables<C, S>>>,
}

struct Tables<C, S> {
    by_id: HashMap<ConnId, Slot<C, S>>,
    /// Join order: sequence number → id.
    order: BTreeMap<u64, ConnId>,
    /// Event name → the subscribed connections' sinks, by sequence number (join order).
    subscribers: HashMap<String, BTreeMap<u64, S>>,
}

/// One indexed connection.
struct Slot<C, S> {
    seq: u64,
    conn: C,
    /// Where its events go; `None` for connections that receive none (ephemeral ones).
    sink: Option<S>,
    /// The events under which it is in `subscribers`.
    events: HashSet<String>,
}

impl<C, S> Default for ConnIndex<C, S> {
    fn default() -> Self {
        ConnIndex {
            next_seq: 0,
            tables: None,
        }
    }
}

impl<C, S: Clone> ConnIndex<C, S> {
    /// How many connections there are.
    pub(crate) fn len(&self) -> usize {
        self.tables.as_ref().map_or(0, |t| t.by_id.len())
    }

    /// Whether there is no connection.
    pub(crate) fn is_empty(&self) -> bool {
        self.tables.is_none()
    }

    /// The connection with this id.
    pub(crate) fn get(&self, id: &ConnId) -> Option<&C> {
        self.tables.as_ref()?.by_id.get(id).map(|s| &s.conn)
    }

    /// The connections in the order they joined.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &C> {
        self.tables.iter().flat_map(|t| {
            t.order
                .values()
                .filter_map(|id| t.by_id.get(id).map(|s| &s.conn))
        })
    }

    /// Adds a connection as the last to join, subscribed to nothing. A connection already
    /// under this id is removed first and returned.
    pub(crate) fn insert(&mut self, id: ConnId, conn: C, sink: Option<S>) -> Option<C> {
        let old = self.remove(&id);
        let seq = self.next_seq;
        self.next_seq += 1;
        let tables = self.tables.get_or_insert_with(|| {
            Box::new(Tables {
                by_id: HashMap::new(),
                order: BTreeMap::new(),
                subscribers: HashMap::new(),
            })
        });
        tables.order.insert(seq, id.clone());
        tables.by_id.insert(
            id,
            Slot {
                seq,
                conn,
                sink,
                events: HashSet::new(),
            },
        );
        old
    }

    /// Removes a connection and its subscriptions.
    pub(crate) fn remove(&mut self, id: &ConnId) -> Option<C> {
        let tables = self.tables.as_mut()?;
        let slot = tables.by_id.remove(id)?;
        tables.order.remove(&slot.seq);
        for event in &slot.events {
            tables.drop_subscriber(event, slot.seq);
        }
        if tables.by_id.is_empty() {
            // The last one left (a stateless call, typically): give the tables' memory back,
            // so an idle actor holds none.
            self.tables = None;
        }
        Some(slot.conn)
    }

    /// Removes every connection; returns them in the order they joined.
    pub(crate) fn take_all(&mut self) -> Vec<C> {
        let Some(mut tables) = self.tables.take() else {
            return Vec::new();
        };
        let order = std::mem::take(&mut tables.order);
        order
            .into_values()
            .filter_map(|id| tables.by_id.remove(&id).map(|s| s.conn))
            .collect()
    }

    /// Adds the connection to the subscribers of `event`. Returns whether it is one now: false
    /// when there is no such connection or it has no sink.
    pub(crate) fn subscribe(&mut self, id: &ConnId, event: &str) -> bool {
        let Some(tables) = self.tables.as_mut() else {
            return false;
        };
        let Some(slot) = tables.by_id.get_mut(id) else {
            return false;
        };
        let Some(sink) = &slot.sink else {
            return false;
        };
        if !slot.events.contains(event) {
            slot.events.insert(event.to_owned());
            tables
                .subscribers
                .entry(event.to_owned())
                .or_default()
                .insert(slot.seq, sink.clone());
        }
        true
    }

    /// Removes the connection from the subscribers of `event`, if it was one.
    pub(crate) fn unsubscribe(&mut self, id: &ConnId, event: &str) {
        let Some(tables) = self.tables.as_mut() else {
            return;
        };
        let Some(slot) = tables.by_id.get_mut(id) else {
            return;
        };
        if slot.events.remove(event) {
            let seq = slot.seq;
            tables.drop_subscriber(event, seq);
        }
    }

    /// The sinks of the connections subscribed to `event`, in the order the connections joined.
    pub(crate) fn subscribers(&self, event: &str) -> impl Iterator<Item = &S> {
        self.tables
            .iter()
            .filter_map(move |t| t.subscribers.get(event))
            .flat_map(BTreeMap::values)
    }
}

impl<C, S> Tables<C, S> {
    fn drop_subscriber(&mut self, event: &str, seq: u64) {
        if let Some(subs) = self.subscribers.get_mut(event) {
            subs.remove(&seq);
            if subs.is_empty() {
                self.subscribers.remove(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    type Index = ConnIndex<u32, u32>;

    fn id(n: u32) -> ConnId {
        ConnId::new(format!("c{n}"))
    }

    impl Index {
        /// Asserts the invariant of [`ConnIndex`].
        fn check(&self) {
            let Some(t) = &self.tables else {
                return;
            };
            assert!(!t.by_id.is_empty(), "no tables without a connection");
            assert_eq!(t.order.len(), t.by_id.len());
            for (seq, id) in &t.order {
                assert_eq!(t.by_id[id].seq, *seq);
            }
            let mut expected: HashMap<String, BTreeMap<u64, u32>> = HashMap::new();
            for slot in t.by_id.values() {
                for event in &slot.events {
                    let sink = slot.sink.expect("only connections with a sink subscribe");
                    expected
                        .entry(event.clone())
                        .or_default()
                        .insert(slot.seq, sink);
                }
            }
            assert_eq!(t.subscribers, expected);
        }
    }

    #[test]
    fn lookup_and_removal_by_id_keep_join_order() {
        let mut index = Index::default();
        for n in 0..5 {
            assert!(index.insert(id(n), n, Some(n)).is_none());
        }
        assert_eq!(index.get(&id(3)), Some(&3));
        assert_eq!(index.remove(&id(1)), Some(1));
        assert_eq!(index.remove(&id(1)), None);
        assert_eq!(index.get(&id(1)), None);
        index.insert(id(9), 9, None);
        assert_eq!(index.iter().copied().collect::<Vec<_>>(), [0, 2, 3, 4, 9]);
        assert_eq!(index.len(), 5);
        index.check();
    }

    #[test]
    fn the_last_connection_leaving_frees_the_tables() {
        let mut index = Index::default();
        index.insert(id(1), 1, Some(10));
        index.insert(id(2), 2, Some(20));
        assert!(index.subscribe(&id(2), "e"));
        index.remove(&id(1));
        assert!(index.tables.is_some(), "one connection is left");
        index.remove(&id(2));
        assert!(index.tables.is_none());
        assert!(index.is_empty());
        // Sequence numbers keep counting: a newcomer joins after any earlier connection.
        index.insert(id(3), 3, Some(30));
        assert_eq!(index.tables.as_ref().unwrap().by_id[&id(3)].seq, 2);
        index.check();
    }

    #[test]
    fn reinserting_an_id_replaces_the_connection_and_its_subscriptions() {
        let mut index = Index::default();
        index.insert(id(1), 1, Some(10));
        index.insert(id(2), 2, Some(20));
        assert!(index.subscribe(&id(1), "e"));
        assert_eq!(index.insert(id(1), 11, Some(11)), Some(1));
        assert_eq!(index.subscribers("e").count(), 0);
        assert_eq!(index.iter().copied().collect::<Vec<_>>(), [2, 11]);
        index.check();
    }

    #[test]
    fn broadcasts_reach_only_subscribers_in_join_order() {
        let mut index = Index::default();
        for n in 0..4 {
            index.insert(id(n), n, Some(n * 10));
        }
        index.insert(id(4), 4, None);
        assert!(index.subscribe(&id(3), "e"));
        assert!(index.subscribe(&id(1), "e"));
        assert!(index.subscribe(&id(1), "e"));
        assert!(index.subscribe(&id(2), "other"));
        assert!(!index.subscribe(&id(4), "e"), "no sink, no events");
        assert!(!index.subscribe(&id(7), "e"), "no such connection");
        assert_eq!(
            index.subscribers("e").copied().collect::<Vec<_>>(),
            [10, 30]
        );
        index.unsubscribe(&id(3), "e");
        assert_eq!(index.subscribers("e").copied().collect::<Vec<_>>(), [10]);
        index.remove(&id(1));
        assert_eq!(index.subscribers("e").count(), 0);
        assert!(
            !index.tables.as_ref().unwrap().subscribers.contains_key("e"),
            "no empty subscriber lists"
        );
        index.check();
    }

    #[test]
    fn take_all_empties_the_index_in_join_order() {
        let mut index = Index::default();
        for n in [5, 3, 8] {
            index.insert(id(n), n, Some(n));
            index.subscribe(&id(n), "e");
        }
        assert_eq!(index.take_all(), [5, 3, 8]);
        assert!(index.is_empty());
        assert_eq!(index.subscribers("e").count(), 0);
        index.insert(id(1), 1, Some(1));
        assert_eq!(index.iter().copied().collect::<Vec<_>>(), [1]);
        index.check();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, bool),
        Remove(u32),
        Subscribe(u32, u8),
        Unsubscribe(u32, u8),
        TakeAll,
    }

    fn op() -> impl Strategy<Value = Op> {
        let conn = 0..12u32;
        let event = 0..4u8;
        prop_oneof![
            4 => (conn.clone(), any::<bool>()).prop_map(|(c, s)| Op::Insert(c, s)),
            2 => conn.clone().prop_map(Op::Remove),
            4 => (conn.clone(), event.clone()).prop_map(|(c, e)| Op::Subscribe(c, e)),
            2 => (conn, event).prop_map(|(c, e)| Op::Unsubscribe(c, e)),
            1 => Just(Op::TakeAll),
        ]
    }

    /// The naive model: a list in join order, each entry with its sink and subscriptions,
    /// scanned for every question.
    type Model = Vec<(u32, Option<u32>, BTreeSet<String>)>;

    fn model_subscribers(model: &Model, event: &str) -> Vec<u32> {
        model
            .iter()
            .filter(|(_, _, subs)| subs.contains(event))
            .filter_map(|(_, sink, _)| *sink)
            .collect()
    }

    proptest! {
        #[test]
        fn matches_a_naive_list(ops in proptest::collection::vec(op(), 0..80)) {
            let mut index = Index::default();
            let mut model: Model = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(c, with_sink) => {
                        let sink = with_sink.then_some(c + 100);
                        let old = model.iter().position(|(m, ..)| *m == c).map(|at| model.remove(at).0);
                        model.push((c, sink, BTreeSet::new()));
                        prop_assert_eq!(index.insert(id(c), c, sink), old);
                    }
                    Op::Remove(c) => {
                        let old = model.iter().position(|(m, ..)| *m == c).map(|at| model.remove(at).0);
                        prop_assert_eq!(index.remove(&id(c)), old);
                    }
                    Op::Subscribe(c, e) => {
                        let event = format!("e{e}");
                        let entry = model.iter_mut().find(|(m, ..)| *m == c);
                        let expected = match entry {
                            Some((_, Some(_), subs)) => { subs.insert(event.clone()); true }
                            _ => false,
                        };
                        prop_assert_eq!(index.subscribe(&id(c), &event), expected);
                    }
                    Op::Unsubscribe(c, e) => {
                        let event = format!("e{e}");
                        if let Some((.., subs)) = model.iter_mut().find(|(m, ..)| *m == c) {
                            subs.remove(&event);
                        }
                        index.unsubscribe(&id(c), &event);
                    }
                    Op::TakeAll => {
                        let all: Vec<u32> = model.drain(..).map(|(c, ..)| c).collect();
                        prop_assert_eq!(index.take_all(), all);
                    }
                }
                index.check();
                prop_assert_eq!(index.len(), model.len());
                let joined: Vec<u32> = model.iter().map(|(c, ..)| *c).collect();
                prop_assert_eq!(index.iter().copied().collect::<Vec<_>>(), joined);
                for c in 0..12 {
                    let present = model.iter().any(|(m, ..)| *m == c);
                    prop_assert_eq!(index.get(&id(c)).is_some(), present);
                }
                for e in 0..4 {
                    let event = format!("e{e}");
                    let got: Vec<u32> = index.subscribers(&event).copied().collect();
                    prop_assert_eq!(got, model_subscribers(&model, &event));
                }
            }
        }
    }
}
