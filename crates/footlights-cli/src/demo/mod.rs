//! The demo actors `footlights serve` offers.
//!
//! | Actor | Actions | Events | Connection params |
//! |---|---|---|---|
//! | [`counter`](Counter) | `increment(amount = 1) → count`, `getCount() → count` | `newCount(count)` | none |
//! | [`chatRoom`](ChatRoom) | `sendMessage(text, sentAt?) → {seq, from, text, sentAt?}` (the message stored; `seq` counts the room's messages from 1), `history() → [{seq, from, text, sentAt?}]` (the latest 100, oldest first), `historyBefore(seq?, limit?) → [{seq, from, text, sentAt?}]` (up to `limit` messages with a smaller `seq`, newest first; `limit` clamped to 1..=100, default 100), `members() → [name]`, `ping(x) → x`, `connCount() → n`, `kick(name, reason?) → n` (closes `name`'s connections and bans the name: its reconnects are refused with `auth.forbidden`) | `newMessage({seq, from, text, sentAt?})`, `joined({name, members})`, `left({name, members})` | `{name?}`, `"anon"` without |
//! | [`secureRoom`](SecureRoom) | `whoami() → {user, role, calls}`, `adminOnly() → n` | none | `{authToken}`, see [`USERS`] |
//! | [`protectedActor`](ProtectedActor) | `whoami() → {user, hits}` | none | `{token: "secret", user?}` |
//! | [`notes`](Notes) | `addNote(text) → id`, `search(word) → [{id, text, createdAt}]` (notes with every word given, newest first, at most 100), `count() → n`, `deleteNote(id) → bool` | none | none |
//! | [`jobQueue`](JobQueue) | `processed() → n`; queue `jobs` takes `{n}` and completes it with `{doubled: 2n}` | none | none |
//!
//! With `--with-test-actors` the server also has [`testActor`](TestActor) and
//! [`testRaw`](TestRaw), which the JavaScript compatibility tests (`tests/js-compat`) use for
//! what the demo actors do not show: create input, masked internal errors, action timeouts,
//! server-side disconnects, an event without arguments, and raw HTTP requests.
//!
//! # Tokens
//!
//! `secureRoom` accepts these `authToken`s and refuses everything else, connections and
//! stateless calls alike, with `auth.forbidden`:
//!
//! | `authToken` | user | role |
//! |---|---|---|
//! | `user-token` | `ursula` | `user` |
//! | `admin-token` | `ada` | `admin` |
//!
//! `adminOnly()` answers `auth.forbidden` to the `user` role. `protectedActor` accepts only
//! `token: "secret"`, like the RivetKit benchmark peer it mirrors.

mod chat_room;
mod counter;
mod job_queue;
mod notes;
mod protected;
mod secure_room;
mod test_actor;
mod test_raw;

use footlights::{ActorOptions, Registry, RegistryBuilder};

pub use chat_room::{
    ANONYMOUS, ChatRoom, ChatRoomActions, JoinParams, Joined, Left, MAX_MESSAGE_LENGTH, Member,
    Message, PAGE_LIMIT,
};
pub use counter::{Counter, CounterActions, NewCount};
pub use job_queue::{Doubled, Job, JobQueue, JobQueueActions};
pub use notes::{MAX_NOTE_LENGTH, Note, Notes, NotesActions, SEARCH_LIMIT};
pub use protected::{ProtectedActor, ProtectedActorActions, TOKEN, TokenParams, Visit, Visitor};
pub use secure_room::{
    AuthParams, Identity, Role, SecureRoom, SecureRoomActions, Session, USERS, WhoAmI,
};
pub use test_actor::{
    ACTION_TIMEOUT, Poked, REFUSAL_MESSAGE, TestActor, TestActorActions, TestParams,
};
pub use test_raw::{TOGETHER, TestRaw, TestRawActions};

/// A registry builder with the demo actors: `counter`, `chatRoom`, `secureRoom`,
/// `protectedActor`, `jobQueue` and `notes`. Add a storage driver and start it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use footlights_cli::demo::{self, CounterActions};
///
/// let registry = demo::registry().start().await?; // in memory
/// let counter = registry.client().get_or_create::<demo::Counter>(["doc"]);
/// assert_eq!(counter.increment(Some(2)).await?, 2);
/// # Ok(()) }
/// ```
pub fn registry() -> RegistryBuilder {
    registry_with(|_| {})
}

/// [`registry`], with every demo type's settings changed by `change` (`footlights serve
/// --sleep-timeout` sets the idle timeout this way).
///
/// ```
/// use std::time::Duration;
/// use footlights_cli::demo;
///
/// let builder = demo::registry_with(|options| options.sleep_timeout = Duration::from_secs(300));
/// ```
pub fn registry_with(change: impl Fn(&mut ActorOptions)) -> RegistryBuilder {
    Registry::builder()
        .actor_with::<Counter>(&change)
        .actor_with::<ChatRoom>(&change)
        .actor_with::<SecureRoom>(&change)
        .actor_with::<ProtectedActor>(&change)
        .actor_with::<JobQueue>(&change)
        .actor_with::<Notes>(&change)
}

/// Adds the actors only the compatibility tests need ([`TestActor`], [`TestRaw`]).
pub fn register_test_actors(builder: RegistryBuilder) -> RegistryBuilder {
    builder.actor::<TestActor>().actor::<TestRaw>()
}
