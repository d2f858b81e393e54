//! Connections whose link dropped, waiting out their grace period: found by id (a resume, a
//! second drop) and by the end of their grace (the actor's timer) in logarithmic time, however
//! many there are. Nothing is allocated while none is detached, the usual case.

use std::collections::{BTreeSet, HashMap};

use footlights_protocol::ConnId;
use tokio::time::Instant;

/// The detached connections of one actor instance, with the time each one's grace ends.
#[derive(Debug, Default)]
pub(super) struct Detached(Option<Box<Index>>);

#[derive(Debug, Default)]
struct Index {
    by_id: HashMap<ConnId, Instant>,
    by_time: BTreeSet<(Instant, ConnId)>,
}

impl Detached {
    /// Whether no connection is detached.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Records that `id`'s grace ends at `until` (replacing an earlier record of it).
    pub(super) fn insert(&mut self, id: ConnId, until: Instant) {
        let index = self.0.get_or_insert_with(Box::default);
        if let Some(old) = index.by_id.insert(id.clone(), until) {
            index.by_time.remove(&(old, id.clone()));
        }
        index.by_time.insert((until, id));
    }

    /// Forgets `id` (it resumed or went away).
    pub(super) fn remove(&mut self, id: &ConnId) {
        let Some(index) = self.0.as_mut() else {
            return;
        };
        if let Some(until) = index.by_id.remove(id) {
            index.by_time.remove(&(until, id.clone()));
        }
        if index.by_id.is_empty() {
            self.0 = None;
        }
    }

    /// When the earliest grace period ends.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.0
            .as_ref()
            .and_then(|index| index.by_time.first().map(|(until, _)| *until))
    }

    /// Takes the connections whose grace ended at `now` or before, earliest first.
    pub(super) fn take_expired(&mut self, now: Instant) -> Vec<ConnId> {
        let Some(index) = self.0.as_mut() else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        while let Some((until, _)) = index.by_time.first() {
            if *until > now {
                break;
            }
            let Some((_, id)) = index.by_time.pop_first() else {
                break;
            };
            index.by_id.remove(&id);
            expired.push(id);
        }
        if index.by_id.is_empty() {
            self.0 = None;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(n: u32) -> ConnId {
        ConnId::new(format!("c{n}"))
    }

    #[test]
    fn expires_in_time_order_and_only_what_is_due() {
        let t0 = Instant::now();
        let mut d = Detached::default();
        assert!(d.is_empty());
        assert_eq!(d.next_expiry(), None);
        d.insert(id(1), t0 + Duration::from_secs(3));
        d.insert(id(2), t0 + Duration::from_secs(1));
        d.insert(id(3), t0 + Duration::from_secs(2));
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.take_expired(t0), Vec::<ConnId>::new());
        assert_eq!(
            d.take_expired(t0 + Duration::from_secs(2)),
            vec![id(2), id(3)]
        );
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(d.take_expired(t0 + Duration::from_secs(9)), vec![id(1)]);
        assert!(d.is_empty(), "the index is freed once empty");
    }

    #[test]
    fn a_second_drop_replaces_the_first_and_a_resume_forgets_it() {
        let t0 = Instant::now();
        let mut d = Detached::default();
        d.insert(id(1), t0 + Duration::from_secs(1));
        d.insert(id(1), t0 + Duration::from_secs(5));
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(
            d.take_expired(t0 + Duration::from_secs(2)),
            Vec::<ConnId>::new()
        );
        d.insert(id(2), t0 + Duration::from_secs(6));
        d.remove(&id(1));
        d.remove(&id(9));
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(6)));
        d.remove(&id(2));
        assert!(d.is_empty());
        assert_eq!(d.next_expiry(), None);
    }

    #[test]
    fn many_connections_stay_consistent() {
        let t0 = Instant::now();
        let mut d = Detached::default();
        for n in 0..1000 {
            d.insert(id(n), t0 + Duration::from_millis(u64::from(n % 97)));
        }
        for n in (0..1000).step_by(2) {
            d.remove(&id(n));
        }
        let expired = d.take_expired(t0 + Duration::from_millis(96));
        assert_eq!(expired.len(), 500);
        assert!(expired.iter().all(|c| {
            let n: u32 = c.as_str()[1..].parse().unwrap();
            n % 2 == 1
        }));
        assert!(d.is_empty());
    }
}
