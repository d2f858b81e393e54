//! `GET /inspector/api/actors/{id}/log`: an actor's live log as a server-sent event stream
//! (shapes in the [module docs](super)).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::response::Response;
use footlights_core::inspect::{ActorLog, LogItem, LogRecord};
use footlights_protocol::{ActionError, ActorId};
use serde_json::json;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::api::local;
use crate::server::Shared;
use crate::shutdown::Stop;

/// Starts watching actor `id` and answers with the stream. The watch is in place when the
/// response's head leaves: anything the actor does from then on is in the stream.
pub(super) async fn stream(shared: &Shared, id: &ActorId) -> Result<Response, ActionError> {
    local(shared, id).await?;
    let log = shared.registry.watch(id).await?;
    let every = shared.config.sse_keep_alive;
    let mut keep_alive = tokio::time::interval_at(Instant::now() + every, every);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let watch = Watch {
        log,
        stop: shared.stop.clone(),
        keep_alive,
        ended: false,
    };
    // Polled by the connection: a client that goes away drops the stream, and with it the
    // watch.
    let body = futures::stream::unfold(watch, |mut watch| async move {
        let chunk = watch.next().await?;
        Some((Ok::<_, Infallible>(chunk), watch))
    });
    Ok(crate::sse::event_stream_response(body))
}

/// One watcher's stream.
struct Watch {
    log: ActorLog,
    stop: Stop,
    keep_alive: Interval,
    /// The `end` event went out: the stream is over.
    ended: bool,
}

impl Watch {
    /// The next chunk of the stream; `None` after `end`.
    async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        let chunk = tokio::select! {
            item = self.log.next() => match item {
                Some(LogItem::Record(record)) => {
                    let (name, data) = record_json(&record);
                    frame(name, &data)
                }
                Some(LogItem::Lagged(lost)) => frame("lagged", &json!({ "lost": lost })),
                Some(_) => Bytes::from_static(b": unknown record\n\n"),
                None => {
                    self.ended = true;
                    frame("end", &json!({ "reason": "stopped" }))
                }
            },
            () = self.stop.wait() => {
                self.ended = true;
                frame("end", &json!({ "reason": "shutdown" }))
            }
            _ = self.keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some(chunk)
    }
}

/// A record as the stream's event name and JSON data.
fn record_json(record: &LogRecord) -> (&'static str, serde_json::Value) {
    match record {
        LogRecord::Action(a) => (
            "action",
            json!({
                "at": a.at_ms,
                "name": a.name,
                "caller": a.caller.as_str(),
                "durationMs": a.duration.as_secs_f64() * 1000.0,
                "error": a.error,
            }),
        ),
        LogRecord::Event(e) => (
            "event",
            json!({
                "at": e.at_ms,
                "name": e.name,
                "recipients": e.recipients,
                "size": e.size,
                "preview": e.preview,
            }),
        ),
        _ => ("unknown", json!({})),
    }
}

/// One server-sent event. JSON text holds no raw line break, so one `data:` line carries it.
fn frame(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_one_event_with_one_data_line() {
        let data = json!({ "preview": "line\nbreak" });
        let text = frame("event", &data);
        assert_eq!(
            &text[..],
            b"event: event\ndata: {\"preview\":\"line\\nbreak\"}\n\n"
        );
    }
}
