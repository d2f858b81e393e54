//! Log lines a person can use: a line per HTTP request and per WebSocket or SSE connection,
//! each with the request id that the response carries in `x-request-id`; and [`init`], a
//! ready-made subscriber for hosts that want one.
//!
//! A request line (target `footlights::requests`) names the method, the path (with any
//! `@token` cut out; the query is never logged, as it may carry one), the status, the time
//! taken, the request id and, for actor routes, the actor's name and key (or id), the action,
//! and the error code when there was one. Failed requests are logged at `info`; successful
//! ones, rate-limited ones (429, counted in `/metrics` instead) and the opening requests of
//! WebSockets and SSE streams at `debug`: at high rates a line per successful request costs
//! far more than the 5 % of an action's CPU that logging may take (measured with
//! `bench/observability.sh`: 2.5 to 9 µs of server CPU per line, against 32 to 38 µs per HTTP
//! action), so it is there for whoever asks for it with
//! `RUST_LOG=info,footlights::requests=debug`.
//!
//! A connection line (target `footlights::connections`, `info`) is written when the
//! connection ends, with its transport, actor, request id and how long it was open.
//!
//! Errors are logged once, at `ERROR`, where they are masked for the client (with their
//! cause); the request line then carries only the code.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::response::Response;

use crate::cors::RayId;
use crate::gateway::path::ActorAddress;
use crate::metrics::{ConnSeries, Transport};

/// What an actor route adds to its response for the request line (a response extension).
#[derive(Debug, Clone)]
pub(crate) struct ActorNote {
    /// The actor type's name, when the address names it.
    pub(crate) name: Option<String>,
    /// The actor's key, when the address names it.
    pub(crate) key: Option<String>,
    /// The actor's id, when the address names it.
    pub(crate) id: Option<String>,
    /// The action called, for `/action/{name}`.
    pub(crate) action: Option<String>,
}

impl ActorNote {
    /// What an address says of its actor.
    pub(crate) fn of(address: &ActorAddress) -> Self {
        match address {
            ActorAddress::Id { id, .. } => ActorNote {
                name: None,
                key: None,
                id: Some(id.clone()),
                action: None,
            },
            ActorAddress::Query(q) => ActorNote {
                name: Some(q.name.clone()),
                key: Some(q.key.to_string()),
                id: None,
                action: None,
            },
        }
    }
}

/// The `group.code` of an error response (a response extension set by the error's encoder).
#[derive(Debug, Clone)]
pub(crate) struct ErrorNote(pub(crate) String);

/// What a request line needs from the request, taken before it is handled. `None` when the
/// line would not be written (nothing listens at `info`), so that costs nothing.
#[derive(Debug)]
pub(crate) struct RequestStart {
    method: Method,
    path: String,
    started: Instant,
}

/// The target of request lines.
const REQUESTS: &str = "footlights::requests";

/// The target of connection lines.
const CONNECTIONS: &str = "footlights::connections";

/// Whether request lines are written at all (something listens at `info` for them).
pub(crate) fn requests_logged() -> bool {
    tracing::enabled!(target: REQUESTS, tracing::Level::INFO)
}

impl RequestStart {
    pub(crate) fn new(method: &Method, path: &str) -> Option<Self> {
        if !requests_logged() {
            return None;
        }
        Some(RequestStart {
            method: method.clone(),
            path: without_token(path),
            started: Instant::now(),
        })
    }

    /// Writes the request line.
    pub(crate) fn done(self, response: &Response, ray: &RayId) {
        let took = self.started.elapsed();
        let status = response.status();
        let note = response.extensions().get::<ActorNote>();
        let code = response
            .extensions()
            .get::<ErrorNote>()
            .map(|e| e.0.as_str());
        let quiet = status.is_success()
            || status.is_informational()
            || status.is_redirection()
            || status == StatusCode::TOO_MANY_REQUESTS;
        let actor = note.and_then(|n| n.name.as_deref());
        let key = note.and_then(|n| n.key.as_deref());
        let actor_id = note.and_then(|n| n.id.as_deref());
        let action = note.and_then(|n| n.action.as_deref());
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: REQUESTS,
                    method = %self.method,
                    path = %self.path,
                    status = status.as_u16(),
                    duration_ms = millis(took),
                    request_id = %ray,
                    actor,
                    key,
                    actor_id,
                    action,
                    code,
                    "request"
                )
            };
        }
        if quiet {
            line!(debug);
        } else {
            line!(info);
        }
    }
}

/// Milliseconds with microsecond precision, for log fields.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// `path` with the token of a direct gateway address (`/gateway/{id}@{token}/…`) cut out.
pub(crate) fn without_token(path: &str) -> String {
    match path.find('@') {
        None => path.to_owned(),
        Some(at) => {
            let rest = &path[at..];
            let end = rest.find('/').unwrap_or(rest.len());
            format!("{}@…{}", &path[..at], &rest[end..])
        }
    }
}

/// One open WebSocket or SSE connection: counted in the transport's gauge while it lives, and
/// logged when it ends.
///
/// It lives as long as the connection, hibernated ones included, so its text fields (request
/// id, actor name, key or id) are kept in one allocation rather than a string each.
#[derive(Debug)]
pub(crate) struct ConnLine {
    transport: Transport,
    series: ConnSeries,
    fields: LineFields,
    started: Instant,
}

impl ConnLine {
    /// A connection opens.
    pub(crate) fn open(
        transport: Transport,
        series: &ConnSeries,
        address: &ActorAddress,
        ray: RayId,
    ) -> Self {
        series.open.inc();
        series.opened.inc();
        let note = ActorNote::of(address);
        ConnLine {
            transport,
            series: series.clone(),
            fields: LineFields::new([
                Some(ray.as_str()),
                note.name.as_deref(),
                note.key.as_deref(),
                note.id.as_deref(),
            ]),
            started: Instant::now(),
        }
    }
}

impl Drop for ConnLine {
    fn drop(&mut self) {
        self.series.open.dec();
        let [ray, actor, key, actor_id] = self.fields.get();
        tracing::info!(
            target: CONNECTIONS,
            transport = self.transport.as_str(),
            duration_ms = millis(self.started.elapsed()),
            request_id = %ray.unwrap_or_default(),
            actor,
            key,
            actor_id,
            "connection closed"
        );
    }
}

/// Up to four optional strings in one allocation: their text one after the other, and where
/// each ends (`u32::MAX` for one that is absent).
#[derive(Debug)]
struct LineFields {
    text: Box<str>,
    ends: [u32; 4],
}

impl LineFields {
    fn new(fields: [Option<&str>; 4]) -> Self {
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let ends = fields.map(|field| match field {
            Some(field) => {
                text.push_str(field);
                u32::try_from(text.len()).unwrap_or(u32::MAX - 1)
            }
            None => u32::MAX,
        });
        LineFields {
            text: text.into_boxed_str(),
            ends,
        }
    }

    fn get(&self) -> [Option<&str>; 4] {
        let mut start = 0;
        self.ends.map(|end| {
            if end == u32::MAX {
                return None;
            }
            let end = (end as usize).min(self.text.len());
            let field = self.text.get(start.min(end)..end);
            start = end;
            field
        })
    }
}

/// How log lines are written by [`init`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One human-readable line per event, with the spans it happened in
    /// (`actor{name=counter key=a}: …`). Colours only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (the message among them),
    /// `target`, and `spans` (each with its fields), for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format `{other}` (text or json)")),
        }
    }
}

/// Installs a global subscriber writing to standard error in `format`, at the levels
/// `RUST_LOG` gives (`info` when it is unset or invalid): one line per request, per
/// connection, per warning and per error, and the server's start and stop. Colours only when
/// standard error is a terminal.
///
/// For a host that has no logging of its own; one that has keeps it, and gets the same lines
/// through it (or adds [`layer`] to its own subscriber).
///
/// ```no_run
/// footlights_server::logging::init(footlights_server::logging::LogFormat::Text)
///     .expect("no other subscriber was installed");
/// ```
///
/// # Errors
/// When a global subscriber is already installed.
pub fn init(format: LogFormat) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let registry = tracing_subscriber::registry().with(layer(format, std::io::stderr, ansi()));
    match log_filter() {
        LogFilter::Targets(targets) => registry.with(targets).try_init(),
        LogFilter::Env(env_filter) => registry.with(env_filter).try_init(),
        LogFilter::Level(level) => registry.with(level).try_init(),
    }
}

/// As [`init`], and exports the server's trace spans through `traces` (feature `otel`).
///
/// The log lines are filtered by `RUST_LOG` as with [`init`], and the trace spans never
/// appear in them. With this subscriber every event passes the log filter and the trace
/// filter in turn; without trace export, [`init`] keeps the one filter.
///
/// # Errors
/// When a global subscriber is already installed.
#[cfg(feature = "otel")]
pub fn init_with_traces(
    format: LogFormat,
    traces: &crate::otel::Traces,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = match log_filter() {
        LogFilter::Targets(targets) => FilterExt::boxed(targets),
        LogFilter::Env(env_filter) => FilterExt::boxed(env_filter),
        LogFilter::Level(level) => FilterExt::boxed(level),
    };
    tracing_subscriber::registry()
        .with(layer(format, std::io::stderr, ansi()).with_filter(filter))
        .with(traces.layer())
        .try_init()
}

/// Colours only for a person at a terminal who did not ask for none (NO_COLOR).
fn ansi() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// What `RUST_LOG` asks to be logged.
// Made once, at start: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum LogFilter {
    Targets(tracing_subscriber::filter::Targets),
    Env(tracing_subscriber::EnvFilter),
    Level(tracing_subscriber::filter::LevelFilter),
}

/// The filter for `RUST_LOG`: `info` when it is unset or invalid.
fn log_filter() -> LogFilter {
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    // Directives by target and level (`info,footlights::requests=debug`) go to `Targets`,
    // which decides from an event's metadata alone; `EnvFilter` also tracks every span it
    // sees, a lock and a lookup each time one is entered (every poll of an actor's task), so
    // it is kept for directives that name spans or fields.
    let targets = if rust_log.trim().is_empty() {
        Ok("info".parse::<tracing_subscriber::filter::Targets>())
    } else {
        rust_log
            .parse::<tracing_subscriber::filter::Targets>()
            .map(Ok)
            .map_err(|_| tracing_subscriber::EnvFilter::try_new(&rust_log))
    };
    match targets {
        Ok(Ok(targets)) => LogFilter::Targets(targets),
        Err(Ok(env_filter)) => LogFilter::Env(env_filter),
        // Neither understands it: `info`, as when it is unset.
        Ok(Err(_)) | Err(Err(_)) => LogFilter::Level(tracing_subscriber::filter::LevelFilter::INFO),
    }
}

/// The formatting layer [`init`] installs, writing to `writer`, with colours if `ansi` (and
/// the format is [`LogFormat::Text`]): for a host that builds its own subscriber, or a test
/// that captures the lines.
pub fn layer<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        ),
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(writer),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fields_give_back_each_field_and_each_absence() {
        let fields = LineFields::new([Some("ray1"), None, Some(""), Some("actor-id")]);
        assert_eq!(
            fields.get(),
            [Some("ray1"), None, Some(""), Some("actor-id")]
        );
        let fields = LineFields::new([None, Some("counter"), Some("[\"a\"]"), None]);
        assert_eq!(fields.get(), [None, Some("counter"), Some("[\"a\"]"), None]);
        assert_eq!(
            &*fields.text, "counter[\"a\"]",
            "one allocation holds them all"
        );
    }

    #[test]
    fn tokens_are_cut_from_logged_paths() {
        assert_eq!(
            without_token("/gateway/abc/action/x"),
            "/gateway/abc/action/x"
        );
        assert_eq!(
            without_token("/gateway/abc@s3cret/action/x"),
            "/gateway/abc@…/action/x"
        );
        assert_eq!(without_token("/gateway/abc@s3cret"), "/gateway/abc@…");
    }

    #[test]
    fn log_formats_parse() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
