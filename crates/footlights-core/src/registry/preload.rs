//! [`Preloads`]: what a key lookup read of a sleeping actor, kept for its next instance.
//!
//! A call addressed by a key the registry no longer remembers reads the actor's metadata,
//! state and alarms from the store in one job ([`Driver::load_actor_by_key`]), beside the
//! key's id. If the actor is asleep, what was read is kept here and the instance started for
//! the call starts from it instead of reading the store again.
//!
//! What was read is what a fresh read would give as long as no instance of the actor ran
//! since the read began: alone, only an actor's instances write its data, and an instance
//! frees its slot only once its writes are durable. So a read is kept only if, under the
//! slots' lock, the actor has no slot and no instance of it stopped since the read began
//! (the stops are numbered, and the most recent ones kept by id); a stop afterwards drops
//! it, and the next instance to start takes it (or drops it, if it must wait for a stopping
//! one). A registry in a cluster keeps nothing: other nodes write too.
//!
//! [`Driver::load_actor_by_key`]: footlights_storage::Driver::load_actor_by_key

use std::collections::VecDeque;
use std::hash::BuildHasher;

use footlights_protocol::ActorId;
use footlights_storage::LoadedActor;

/// How many stops are kept by id: a read that spans more stops than this is not kept.
const STOPS_KEPT: usize = 1024;

/// How many reads are kept at most, waiting for an instance: normally a read is taken within
/// the same call, so this only bounds the reads of lookups no call followed.
const MAX_KEPT: usize = 256;

/// The most state bytes kept across the reads waiting for an instance.
const MAX_KEPT_BYTES: usize = 4 << 20;

/// Reads of sleeping actors waiting for their next instance, and the recent stops that tell
/// whether a read may be stale. Locked after the slots when both are.
pub(crate) struct Preloads {
    /// How many instances have stopped (freed or lost their slot) so far.
    stops: u64,
    /// The number and id hash of the most recent stops, oldest first, at most
    /// [`STOPS_KEPT`]. Two ids with one hash only make a read be dropped.
    recent: VecDeque<(u64, u64)>,
    hasher: std::collections::hash_map::RandomState,
    /// The reads, least recently kept first.
    kept: lru::LruCache<ActorId, LoadedActor>,
    /// The state bytes of `kept`, added up.
    kept_bytes: usize,
}

impl Preloads {
    /// No reads, no stops.
    pub(crate) fn new() -> Self {
        Preloads {
            stops: 0,
            recent: VecDeque::new(),
            hasher: Default::default(),
            kept: lru::LruCache::unbounded(),
            kept_bytes: 0,
        }
    }

    /// Where the stops stand: taken before a read begins, handed back to [`keep`](Self::keep).
    pub(crate) fn mark(&self) -> u64 {
        self.stops
    }

    /// An instance of `id` stopped: what was read of it before is stale.
    pub(crate) fn stopped(&mut self, id: &ActorId) {
        self.stops += 1;
        if self.recent.len() == STOPS_KEPT {
            self.recent.pop_front();
        }
        self.recent
            .push_back((self.stops, self.hasher.hash_one(id)));
        self.drop_read(id);
    }

    /// Whether an instance of `id` may have stopped since `mark`.
    fn stopped_since(&self, id: &ActorId, mark: u64) -> bool {
        let since = self.stops.saturating_sub(mark);
        if since == 0 {
            return false;
        }
        if since > self.recent.len() as u64 {
            return true;
        }
        let hash = self.hasher.hash_one(id);
        self.recent
            .iter()
            .rev()
            .take_while(|(n, _)| *n > mark)
            .any(|(_, h)| *h == hash)
    }

    /// Keeps `loaded`, read from a point in time after `mark`, for the next instance of its
    /// actor, unless an instance of it stopped since `mark`. The caller holds the slots' lock
    /// and has seen no slot for the actor. Returns whether it was kept.
    pub(crate) fn keep(&mut self, loaded: LoadedActor, mark: u64) -> bool {
        let bytes = loaded.state.as_ref().map_or(0, Vec::len);
        if bytes > MAX_KEPT_BYTES || self.stopped_since(&loaded.meta.id, mark) {
            return false;
        }
        let id = loaded.meta.id.clone();
        self.drop_read(&id);
        while self.kept.len() >= MAX_KEPT || self.kept_bytes + bytes > MAX_KEPT_BYTES {
            let Some((_, old)) = self.kept.pop_lru() else {
                break;
            };
            self.kept_bytes -= old.state.as_ref().map_or(0, Vec::len);
        }
        self.kept_bytes += bytes;
        self.kept.put(id, loaded);
        true
    }

    /// The read kept for `id`, if any; an instance of it is starting.
    pub(crate) fn take(&mut self, id: &ActorId) -> Option<LoadedActor> {
        let loaded = self.kept.pop(id)?;
        self.kept_bytes -= loaded.state.as_ref().map_or(0, Vec::len);
        Some(loaded)
    }

    fn drop_read(&mut self, id: &ActorId) {
        let _ = self.take(id);
    }

    /// How many reads are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights_protocol::ActorKey;
    use footlights_storage::ActorMeta;

    fn read(id: &str, state: &[u8]) -> LoadedActor {
        LoadedActor {
            meta: ActorMeta::new(ActorId::new(id), "counter", ActorKey::from(id), 0),
            state: Some(state.to_vec()),
            alarms: vec![],
        }
    }

    #[test]
    fn a_read_is_kept_until_an_instance_takes_it() {
        let mut p = Preloads::new();
        let mark = p.mark();
        assert!(p.keep(read("a", b"1"), mark));
        assert_eq!(p.take(&ActorId::new("b")), None);
        assert_eq!(p.take(&ActorId::new("a")), Some(read("a", b"1")));
        assert_eq!(p.take(&ActorId::new("a")), None, "taken once");
    }

    #[test]
    fn a_stop_of_the_actor_during_the_read_refuses_it() {
        let mut p = Preloads::new();
        let mark = p.mark();
        p.stopped(&ActorId::new("other"));
        p.stopped(&ActorId::new("a"));
        p.stopped(&ActorId::new("other 2"));
        assert!(
            !p.keep(read("a", b"1"), mark),
            "a stopped after the read began"
        );
        assert!(p.keep(read("b", b"2"), mark), "b did not");
        assert_eq!(p.len(), 1);
        let mark = p.mark();
        assert!(p.keep(read("a", b"3"), mark), "a read begun after the stop");
    }

    #[test]
    fn a_stop_after_the_read_was_kept_drops_it() {
        let mut p = Preloads::new();
        let mark = p.mark();
        assert!(p.keep(read("a", b"1"), mark));
        p.stopped(&ActorId::new("a"));
        assert_eq!(p.take(&ActorId::new("a")), None);
    }

    #[test]
    fn a_read_spanning_more_stops_than_are_kept_is_refused() {
        let mut p = Preloads::new();
        let mark = p.mark();
        for i in 0..=STOPS_KEPT {
            p.stopped(&ActorId::new(format!("other {i}")));
        }
        assert!(!p.keep(read("a", b"1"), mark));
        let mark = p.mark();
        p.stopped(&ActorId::new("other"));
        assert!(p.keep(read("a", b"1"), mark), "one stop, of another actor");
    }

    #[test]
    fn the_reads_kept_are_bounded_in_number_and_bytes() {
        let mut p = Preloads::new();
        for i in 0..MAX_KEPT + 10 {
            assert!(p.keep(read(&format!("a{i}"), b"x"), p.mark()));
        }
        assert_eq!(p.len(), MAX_KEPT);
        assert_eq!(p.take(&ActorId::new("a0")), None, "the oldest went first");
        let big = vec![0; MAX_KEPT_BYTES / 2 + 1];
        assert!(p.keep(read("big1", &big), p.mark()));
        assert!(p.keep(read("big2", &big), p.mark()));
        assert_eq!(p.take(&ActorId::new("big1")), None, "over the byte bound");
        assert!(p.take(&ActorId::new("big2")).is_some());
        assert!(!p.keep(read("huge", &vec![0; MAX_KEPT_BYTES + 1]), p.mark()));
        assert_eq!(
            p.kept_bytes,
            p.kept
                .iter()
                .map(|(_, l)| l.state.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
        );
    }
}
