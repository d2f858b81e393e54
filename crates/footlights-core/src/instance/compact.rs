//! The compact form of a dormant instance: the actor's state and vars, and only the parts of
//! its context that must last ([`Lasting`]: id, key, alarms, queued messages, its type's
//! counts). What an actor with nothing to do holds empty, can make again or finds in its
//! registry and type is dropped: the shared context's allocation, the output gate, the
//! key-value store's handle and cache, the handles every actor of the type shares, and an
//! unwatched live log tap. [`Compact::expand`] makes them anew when a message revives the
//! actor, with no storage read; the key-value store reads its entries again as they are asked
//! for.
//!
//! Only an instance whose context no one else holds (no clone of its [`Ctx`] kept by a task
//! or by the actor's own vars) and whose database is unopened takes this form; the dormant pool
//! keeps any other whole. With nothing in flight, a new gate is equivalent to the old one:
//! every write the old one issued is durable, and nothing holds its sequence numbers.

use super::*;
use crate::ctx::Lasting;

/// A dormant instance without its context's transient parts.
pub(super) struct Compact<A: Actor> {
    actor: A,
    table: Arc<ActionTable<A>>,
    rx: MailboxRx,
    reg: Arc<RegistryInner>,
    token: u64,
    /// Boxed: no spare capacity kept, and 8 bytes less than a `Vec`.
    last_snapshot: Box<[u8]>,
    runner: run_loop::Runner,
    lasting: Lasting<A>,
}

impl<A: Actor> Compact<A> {
    /// The compact form of `instance`, which may go dormant (see
    /// [`Instance::may_go_dormant`]); the instance back, unchanged, when another holder of its
    /// context, its open database or a write not yet handed over keeps it whole.
    #[expect(
        clippy::result_large_err,
        reason = "the caller keeps the instance whole, in a box of its own, on refusal"
    )]
    pub(super) fn of(mut instance: Instance<A>) -> Result<Self, Instance<A>> {
        let Some(shared) = Arc::get_mut(&mut instance.ctx.shared) else {
            return Err(instance);
        };
        #[cfg(feature = "db")]
        if shared.db.is_open() {
            return Err(instance);
        }
        let pending = shared
            .pending_writes
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pending.is_empty() {
            return Err(instance);
        }
        let lasting = shared.take_lasting();
        // The rest of the instance (its context among it) is dropped here.
        Ok(Compact {
            actor: instance.actor,
            table: instance.table,
            rx: instance.rx,
            reg: instance.reg,
            token: instance.token,
            last_snapshot: instance.last_snapshot.into_boxed_slice(),
            runner: instance.runner,
            lasting,
        })
    }

    /// The instance again, with a new context around what lasted.
    pub(super) fn expand(self) -> Instance<A> {
        let shared = Shared::new(self.lasting, super::boot::handles(&self.reg, &self.table));
        let ctx = Ctx {
            shared: Arc::new(shared),
            conn: None,
        };
        let mut instance = Instance::assemble(
            self.actor,
            ctx,
            self.table,
            self.rx,
            self.reg,
            self.token,
            self.last_snapshot.into_vec(),
        );
        instance.runner = self.runner;
        instance
    }
}
