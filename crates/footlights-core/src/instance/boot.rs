//! Starting an actor instance: load metadata, state and alarms, run the start hooks.

use super::*;

impl<A: Actor> Instance<A> {
    /// Loads the actor of `start` (whose previous instance, if any, has stopped) and makes
    /// its instance.
    pub(super) async fn boot(start: Start, table: Arc<ActionTable<A>>) -> Result<Self, BootError> {
        let Start {
            id,
            token,
            rx,
            tx,
            prev: _,
            reg,
            metrics,
            preloaded,
        } = start;
        match Self::load(&id, &tx, &reg, metrics, &table, preloaded).await {
            Ok((actor, ctx, last_snapshot)) => {
                Self::unpark_conns(&reg, &ctx);
                Ok(Self::assemble(
                    actor,
                    ctx,
                    table,
                    rx,
                    reg,
                    token,
                    last_snapshot,
                ))
            }
            Err(e) => Err((e, rx)),
        }
    }

    /// An instance of `actor` with `ctx`, between messages, with nothing pending.
    pub(super) fn assemble(
        actor: A,
        ctx: Ctx<A>,
        table: Arc<ActionTable<A>>,
        rx: MailboxRx,
        reg: Arc<RegistryInner>,
        token: u64,
        last_snapshot: Vec<u8>,
    ) -> Self {
        Instance {
            actor,
            ctx,
            options: table.options.clone(),
            table,
            rx,
            reg,
            token,
            deferred: Deferreds(None),
            last_snapshot,
            dirty: false,
            panicked: false,
            done: None,
            detached: Default::default(),
            destroyed: None,
            runner: Default::default(),
            trace: tracing::Span::none(),
        }
    }

    /// Hibernation: takes back the connections and raw WebSockets the previous instance
    /// parked as it went to sleep, on this instance's gate and mailbox. No hook runs; from
    /// the first message on, they are in `ctx.conns()` and `ctx.raw_sockets()` as they were.
    fn unpark_conns(reg: &RegistryInner, ctx: &Ctx<A>) {
        let Some(parked) = reg.unpark(&ctx.shared.id) else {
            return;
        };
        let Ok(parked) = parked.downcast::<super::stop::Hibernated<A>>() else {
            tracing::error!(actor = A::NAME, id = %ctx.shared.id, "parked connections of another actor type");
            return;
        };
        let shared = &ctx.shared;
        let super::stop::Hibernated { conns, sockets } = *parked;
        for p in conns {
            tracing::trace!(actor = A::NAME, conn = %p.id(), "connection back from hibernation");
            shared.add_conn(p.unpark(
                shared.gate.clone(),
                shared.mailbox.clone(),
                shared.tap.clone(),
            ));
        }
        for p in sockets {
            tracing::trace!(
                actor = A::NAME,
                socket = p.id,
                "raw WebSocket back from hibernation"
            );
            let conn = p.conn.unpark(
                shared.gate.clone(),
                shared.mailbox.clone(),
                shared.tap.clone(),
            );
            shared.add_conn(conn.clone());
            let socket = RawSocket::new(p.id, p.tx, shared.gate.clone(), shared.mailbox.clone());
            shared.raw_sockets().insert(p.id, (socket, conn));
        }
    }

    pub(super) async fn load(
        id: &footlights_protocol::ActorId,
        tx: &Mailbox,
        reg: &Arc<RegistryInner>,
        metrics: Arc<crate::metrics::ActorTypeMetrics>,
        table: &ActionTable<A>,
        preloaded: Option<footlights_storage::LoadedActor>,
    ) -> Result<(A, Ctx<A>, Vec<u8>), ActionError> {
        let queue_specs = &table.queues;
        let options = &*table.options;
        let storage = |e: footlights_storage::StorageError| crate::writer::storage_error(&e);
        let driver = reg.driver();
        // One job for the driver: metadata, state and alarms in one read, unless the key
        // lookup that led here brought them.
        let (loaded, queued) = tokio::join!(
            async {
                match preloaded {
                    Some(loaded) if loaded.meta.id == *id => Ok(Some(loaded)),
                    _ => driver.load_actor(id).await,
                }
            },
            async {
                // An actor type without queues has no queue entries: spare the read.
                if queue_specs.is_empty() {
                    Ok(Vec::new())
                } else {
                    crate::queue::state::load(&**driver, id).await
                }
            }
        );
        let footlights_storage::LoadedActor {
            meta,
            state: stored,
            alarms,
        } = match loaded.map_err(storage)? {
            Some(l) if l.meta.name == A::NAME => l,
            _ => {
                return Err(ActionError::actor_not_found(format!(
                    "actor {id} not found"
                )));
            }
        };
        // In a cluster the claim bumps the stored generation, and the instance's writes are
        // fenced with the bumped one: an instance on another node that has not yet noticed it
        // lost the actor cannot overwrite this one's writes. Alone, the registry is the only
        // writer of its store (serving one store from several processes takes a cluster) and starts one
        // instance of an actor at a time, each after the previous one has ended with its
        // writes durable; every write is submitted by the instance's own task, so no write of
        // an ended instance can follow the next one's. The stored generation is the fence as
        // it is, and a start writes nothing.
        let generation = match reg.membership() {
            Some(membership) => {
                let generation = membership.claim_for_start(id).await?;
                // A clustered registry's clock holds only the alarms of actors started here.
                let now = std::time::SystemTime::now();
                for alarm in &alarms {
                    let at = std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(u64::try_from(alarm.at_ms).unwrap_or(0));
                    let delay = at.duration_since(now).unwrap_or_default();
                    reg.clock().add(A::NAME, id, &alarm.id, delay);
                }
                generation
            }
            None => meta.generation,
        };
        let lasting = crate::ctx::Lasting {
            id: id.clone(),
            key: reg.shared_key(A::NAME, &meta.key),
            generation,
            mailbox: tx.clone(),
            alarms: alarms.into_iter().map(|a| (a.id.clone(), a)).collect(),
            conns: Default::default(),
            metrics,
            queues: Default::default(),
            tap: None,
        };
        let shared = Arc::new(Shared::new(lasting, handles(reg, table)));
        let queued = queued.map_err(storage)?;
        if !queued.is_empty() {
            shared.queues.load(queued);
            for (name, n) in shared.queues.depths() {
                shared
                    .metrics
                    .queued(&name, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        tracing::Span::current().record("key", tracing::field::display(&meta.key));
        let ctx = Ctx { shared, conn: None };
        let limit = options.action_timeout;
        // The schema is in place before any hook runs.
        #[cfg(feature = "db")]
        if !options.db_migrations.is_empty() {
            crate::db::migrate(ctx.db(), &options.db_migrations).await?;
        }
        let mut writes = Vec::new();
        let (mut actor, loaded) = match stored {
            Some(bytes) => (snapshot::decode::<A>(&bytes)?, bytes),
            None => {
                let input = match driver.kv_get(id, INPUT_KEY).await.map_err(storage)? {
                    Some(bytes) => snapshot::decode::<Value>(&bytes)?,
                    None => Value::Null,
                };
                let input: A::Input = from_value(input)
                    .map_err(|e| ActionError::invalid_request(format!("create input: {e}")))?;
                let mut actor = guarded(
                    limit,
                    ActionError::action_timed_out,
                    A::create_state(&ctx, &input),
                )
                .await?;
                guarded(
                    limit,
                    ActionError::action_timed_out,
                    actor.on_create(&ctx, &input),
                )
                .await?;
                writes.push(Write::KvDelete {
                    actor: id.clone(),
                    key: INPUT_KEY.to_vec(),
                });
                (actor, Vec::new())
            }
        };
        guarded(
            limit,
            ActionError::action_timed_out,
            actor.create_vars(&ctx),
        )
        .await?;
        guarded(limit, ActionError::action_timed_out, actor.on_wake(&ctx)).await?;
        let snapshot = snapshot::encode(&actor)?;
        if snapshot != loaded {
            writes.push(Write::State {
                actor: id.clone(),
                bytes: snapshot.clone(),
            });
        }
        writes.extend(ctx.shared.take_pending_writes());
        if !writes.is_empty() || ctx.shared.kv.has_staged() || ctx.shared.db_has_staged() {
            let gate = ctx.shared.gate.clone();
            let seq = gate.issue();
            writes.extend(ctx.shared.kv.take_staged(seq));
            #[cfg(feature = "db")]
            writes.extend(ctx.shared.db.take_staged(seq));
            let fence = Some(footlights_storage::Fence {
                actor: id.clone(),
                generation,
            });
            reg.writer().submit(WriteRequest {
                writes,
                fence,
                gate,
                seq,
                span: tracing::Span::none(),
            });
        }
        // Alarms loaded from storage are already on the registry clock (it loads them at
        // startup and keeps them across sleeps).
        tracing::debug!(actor = A::NAME, %id, key = %meta.key, "actor started");
        Ok((actor, ctx, snapshot))
    }
}

/// What every context of `table`'s type on `reg` shares.
pub(super) fn handles<A: Actor>(
    reg: &RegistryInner,
    table: &ActionTable<A>,
) -> crate::ctx::Handles {
    crate::ctx::Handles {
        driver: reg.driver().clone(),
        client: reg.client(),
        clock: reg.clock(),
        options: table.options.clone(),
        queue_specs: table.queues.clone(),
    }
}
