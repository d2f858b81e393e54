//! Operators' messages inside the actor task: reading the live state and what surrounds it,
//! and replacing the state (see [`crate::inspect`]).

use super::*;
use crate::alarm::{AlarmData, Rule};
use crate::inspect::{ActorView, ConnView, InspectMsg, InspectOptions, QueueView, ScheduleView};
use crate::kv::Kv;

impl<A: Actor> Instance<A> {
    pub(super) async fn inspect(&mut self, msg: InspectMsg) {
        match msg {
            InspectMsg::View { options, reply } => {
                let _ = reply.send(self.view(options).await);
            }
            InspectMsg::Watch { reply } => {
                let _ = reply.send(self.ctx.shared.tap.watch());
            }
            InspectMsg::ReplaceState { state, reply } => {
                let result = self.replace_state(state).await;
                // Through the gate: the answer leaves once the new state is durable (or
                // becomes the write's error if it fails).
                self.ctx.shared.gate.push(Output::Reply(reply, result));
            }
        }
    }

    async fn view(&mut self, options: InspectOptions) -> Result<ActorView, ActionError> {
        let state = footlights_protocol::to_value(&self.actor)
            .map_err(|e| ActionError::internal(format!("state did not serialize: {e}")))?;
        let connections = self
            .ctx
            .conns()
            .iter()
            .map(|conn| {
                let mut subscriptions = conn.subscribed_events();
                subscriptions.sort_unstable();
                ConnView {
                    id: conn.id().clone(),
                    ephemeral: conn.is_ephemeral(),
                    detached: conn.sink().is_some_and(|s| s.is_detached()),
                    subscriptions,
                    params: conn.sent_params().cloned(),
                    state: self.actor.inspect_conn_state(&conn.state()),
                }
            })
            .collect();
        let mut schedules: Vec<ScheduleView> = self
            .ctx
            .shared
            .alarms()
            .values()
            .map(|alarm| {
                let data = AlarmData::decode(&alarm.args).ok();
                let job = data.as_ref().and_then(|d| d.repeat.as_ref()).map(|r| {
                    let rule = match &r.rule {
                        Rule::Every { ms } => format!("every {ms} ms"),
                        Rule::Cron {
                            expression,
                            time_zone,
                        } => format!("cron {expression:?} in {time_zone}"),
                    };
                    (r.name.clone(), rule)
                });
                ScheduleView {
                    id: alarm.id.clone(),
                    at_ms: alarm.at_ms,
                    action: alarm.action.clone(),
                    failures: data.as_ref().map_or(0, |d| d.attempt),
                    args: data.map(|d| d.args).unwrap_or_default(),
                    job,
                }
            })
            .collect();
        schedules.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id)));
        let shared = &self.ctx.shared;
        let mut names: Vec<String> = shared.queue_specs.keys().cloned().collect();
        if let Some(queues) = shared.queues.peek() {
            for (name, _) in queues.depths() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.sort_unstable();
        names.retain(|n| options.queue.as_ref().is_none_or(|only| only == n));
        let queues = names
            .into_iter()
            .map(|name| match shared.queues.peek() {
                Some(q) => q.view(name, options.queue_after, options.queue_limit),
                None => QueueView {
                    name,
                    depth: 0,
                    in_flight: 0,
                    messages: Vec::new(),
                    more: false,
                },
            })
            .collect();
        let db = self.db_view(&options).await?;
        let kv = Kv::new(&self.ctx.shared.kv).list(options.kv).await?;
        Ok(ActorView {
            state,
            connections,
            schedules,
            kv,
            queues,
            db,
        })
    }

    /// The actor's database, if it has one: opened this time, or with pages stored (an
    /// actor that never used one is not given one by being looked at).
    #[cfg(feature = "db")]
    async fn db_view(
        &mut self,
        options: &InspectOptions,
    ) -> Result<Option<crate::inspect::DbView>, ActionError> {
        let shared = &self.ctx.shared;
        if !shared.db.is_open() {
            let stored = shared
                .kv
                .driver()
                .kv_get(&shared.id, crate::db::LEN_KEY)
                .await
                .map_err(|e| crate::writer::storage_error(&e))?;
            if stored.is_none() {
                return Ok(None);
            }
        }
        crate::db::inspect::view(
            self.ctx.db(),
            options.db_table.clone(),
            options.db_offset,
            options.db_limit,
        )
        .await
        .map(Some)
    }

    #[cfg(not(feature = "db"))]
    async fn db_view(
        &mut self,
        _options: &InspectOptions,
    ) -> Result<Option<crate::inspect::DbView>, ActionError> {
        Ok(None)
    }

    /// Deserializes `state` into the actor's type and puts it in place; the ephemeral fields
    /// are rebuilt (`create_vars`). The end of the message saves it as after an action, with
    /// the state-change hook. A value of the wrong shape, or a failing `create_vars`, leaves
    /// the old state in place.
    async fn replace_state(&mut self, state: Value) -> Result<Value, ActionError> {
        let new: A = footlights_protocol::from_value(state).map_err(|e| {
            ActionError::invalid_request(format!("the state does not fit the actor's type: {e}"))
        })?;
        let old = std::mem::replace(&mut self.actor, new);
        let ctx = self.ctx.clone();
        let vars = guarded(
            self.options.action_timeout,
            ActionError::action_timed_out,
            self.actor.create_vars(&ctx),
        )
        .await;
        if let Err(e) = vars {
            self.actor = old;
            return Err(for_client(A::NAME, e));
        }
        self.dirty = true;
        tracing::info!(actor = A::NAME, "state replaced by an operator");
        Ok(Value::Null)
    }
}
