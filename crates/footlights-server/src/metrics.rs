//! `GET /metrics`: the server's and the runtime's counts in the Prometheus text format
//! (OpenMetrics 1.0), through `prometheus-client`.
//!
//! The server's own series (connections, bytes, refusals) are `prometheus-client` metrics
//! whose handles are resolved once, at start; the runtime's (actions, wakes and sleeps, group
//! commits) are atomics kept by `footlights-core` and read at each scrape by a collector, so
//! the runtime knows nothing of Prometheus. Process series are read from `/proc` on Linux.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use footlights_core::Registry;
use footlights_core::metrics::HistogramSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};

/// The transports a connection can use, as the `transport` label says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The realtime WebSocket (`/connect`).
    WebSocket,
    /// The SSE transport (`/connect/sse`).
    Sse,
    /// A raw WebSocket for the actor's own handler (`/websocket/…`).
    RawWebSocket,
}

impl Transport {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Sse => "sse",
            Transport::RawWebSocket => "raw_websocket",
        }
    }
}

/// One transport's connection series, resolved once.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnSeries {
    /// Open now.
    pub(crate) open: Gauge,
    /// Opened since the start.
    pub(crate) opened: Counter,
}

/// Why a request or connection was refused before it reached an actor, as the `reason` label
/// says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `rate_limit_per_client`.
    RateLimitClient,
    /// `rate_limit_per_actor`.
    RateLimitActor,
    /// No token where one is needed.
    Unauthorized,
    /// A wrong token, or the access check said no.
    Forbidden,
    /// `max_connections` reached.
    TooManyConnections,
    /// `max_pending_connections` reached: the listener waited before accepting.
    PendingConnectionsFull,
}

impl Refused {
    const ALL: [Refused; 6] = [
        Refused::RateLimitClient,
        Refused::RateLimitActor,
        Refused::Unauthorized,
        Refused::Forbidden,
        Refused::TooManyConnections,
        Refused::PendingConnectionsFull,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Refused::RateLimitClient => "rate_limit_client",
            Refused::RateLimitActor => "rate_limit_actor",
            Refused::Unauthorized => "unauthorized",
            Refused::Forbidden => "forbidden",
            Refused::TooManyConnections => "too_many_connections",
            Refused::PendingConnectionsFull => "pending_connections_full",
        }
    }

    /// The reason an access check's error stands for.
    pub(crate) fn access(error: &footlights_protocol::ActionError) -> Refused {
        if error.code() == "unauthorized" {
            Refused::Unauthorized
        } else {
            Refused::Forbidden
        }
    }
}

/// The server's own series, and the registry they are encoded from.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: prometheus_client::registry::Registry,
    websocket: ConnSeries,
    sse: ConnSeries,
    raw_websocket: ConnSeries,
    refused: [Counter; Refused::ALL.len()],
    /// Bytes read from client sockets (HTTP and upgraded connections alike).
    pub(crate) bytes_in: Counter,
    /// Bytes written to client sockets.
    pub(crate) bytes_out: Counter,
    /// Realtime WebSockets parked now, their actor asleep.
    pub(crate) parked: Gauge,
    /// Broadcast events written to realtime WebSockets by the broadcasting thread.
    pub(crate) direct_events: Counter,
}

/// `Family<[(&str, &str); 1], M>` made by hand for a closed set of label values: each handle
/// is registered once and kept, so counting is one atomic add.
type Labeled<M> = Family<[(&'static str, &'static str); 1], M>;

impl Metrics {
    /// The series of a server serving `runtime`.
    pub(crate) fn new(runtime: Registry) -> Self {
        let mut registry = prometheus_client::registry::Registry::with_prefix("footlights");
        let open: Labeled<Gauge> = Family::default();
        let opened: Labeled<Counter> = Family::default();
        let series = |t: Transport| ConnSeries {
            open: open.get_or_create(&[("transport", t.as_str())]).clone(),
            opened: opened.get_or_create(&[("transport", t.as_str())]).clone(),
        };
        let websocket = series(Transport::WebSocket);
        let sse = series(Transport::Sse);
        let raw_websocket = series(Transport::RawWebSocket);
        registry.register(
            "connections_open",
            "Client connections open now, by transport",
            open,
        );
        registry.register(
            "connections_opened",
            "Client connections opened since the start, by transport",
            opened,
        );
        let refused_family: Labeled<Counter> = Family::default();
        let refused = Refused::ALL.map(|r| {
            refused_family
                .get_or_create(&[("reason", r.as_str())])
                .clone()
        });
        registry.register(
            "requests_refused",
            "Requests and connections refused before reaching an actor, by reason",
            refused_family,
        );
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        registry.register(
            "received_bytes",
            "Bytes read from client sockets",
            bytes_in.clone(),
        );
        registry.register(
            "sent_bytes",
            "Bytes written to client sockets",
            bytes_out.clone(),
        );
        let parked = Gauge::default();
        registry.register(
            "websockets_parked",
            "Realtime WebSockets parked now: their actor sleeps and the socket keeps only its stream",
            parked.clone(),
        );
        let direct_events = Counter::default();
        registry.register(
            "websocket_events_written_direct",
            "Broadcast events written to realtime WebSockets by the broadcasting thread, without waking the connection's task",
            direct_events.clone(),
        );
        registry.register_collector(Box::new(RuntimeCollector(runtime)));
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry,
            websocket,
            sse,
            raw_websocket,
            refused,
            bytes_in,
            bytes_out,
            parked,
            direct_events,
        }
    }

    /// The connection series of `transport`.
    pub(crate) fn conns(&self, transport: Transport) -> &ConnSeries {
        match transport {
            Transport::WebSocket => &self.websocket,
            Transport::Sse => &self.sse,
            Transport::RawWebSocket => &self.raw_websocket,
        }
    }

    /// Counts a refusal.
    pub(crate) fn refused(&self, reason: Refused) {
        self.refusals(reason).inc();
    }

    /// The counter of one refusal reason.
    pub(crate) fn refusals(&self, reason: Refused) -> &Counter {
        let i = Refused::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        &self.refused[i]
    }

    /// The answer to `GET /metrics`.
    pub(crate) fn response(&self) -> Response {
        let mut text = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            // Writing into a String cannot fail; an encoder error is a bug of ours.
            tracing::error!("metrics did not encode");
        }
        let mut response = text.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        response
    }
}

/// Reads the runtime's counts at each scrape.
#[derive(Debug)]
struct RuntimeCollector(Registry);

/// Writes a histogram snapshot (cumulative, last bound infinite) as `prometheus-client` wants
/// it: per-bucket counts, the last bound `f64::MAX` (written `+Inf`).
fn encode_histogram(encoder: MetricEncoder<'_>, h: &HistogramSnapshot) -> std::fmt::Result {
    let mut encoder = encoder;
    let mut before = 0;
    let buckets: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let n = cumulative - before;
            before = cumulative;
            (if bound.is_finite() { bound } else { f64::MAX }, n)
        })
        .collect();
    encoder
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(h.sum, h.count, &buckets, None)
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let metrics = self.0.metrics();
        let types = metrics.actor_types();
        let mut counter = |name: &str, help: &str, value: &dyn Fn(usize) -> u64| {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (i, t) in types.iter().enumerate() {
                let labels = [("actor", t.name())];
                ConstCounter::new(value(i)).encode(family.encode_family(&labels)?)?;
            }
            Ok::<_, std::fmt::Error>(())
        };
        counter(
            "actions",
            "Actions that finished (scheduled ones included), by actor type",
            &|i| types[i].actions(),
        )?;
        counter(
            "actor_wakes",
            "Actor instances started (woken), by actor type",
            &|i| types[i].wakes(),
        )?;
        counter(
            "actor_sleeps",
            "Actor instances stopped (slept, shut down or destroyed), by actor type",
            &|i| types[i].sleeps(),
        )?;
        counter(
            "events_sent",
            "Broadcast events handed to subscribed connections, by actor type",
            &|i| types[i].events_sent(),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "action_errors",
                "Actions that failed, by actor type and error group.code",
                None,
                MetricType::Counter,
            )?;
            for t in types {
                for (code, n) in t.errors() {
                    let labels = [("actor", t.name()), ("code", code.as_str())];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut gauge = |name: &str, help: &str, value: &dyn Fn(usize) -> i64| {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (i, t) in types.iter().enumerate() {
                let labels = [("actor", t.name())];
                ConstGauge::new(value(i)).encode(family.encode_family(&labels)?)?;
            }
            Ok::<_, std::fmt::Error>(())
        };
        gauge("actors_awake", "Actors awake now, by actor type", &|i| {
            types[i].awake()
        })?;
        gauge(
            "actors_dormant",
            "Awake actors without a task of their own now (idle past dormant_after), by actor type",
            &|i| types[i].dormant(),
        )?;
        {
            // Per actor type and declared queue name, both few; not per actor, whose count
            // is unbounded.
            let mut family = encoder.encode_descriptor(
                "queue_messages",
                "Messages in the queues of awake actors (taken, not yet completed ones included), by actor type and queue name",
                None,
                MetricType::Gauge,
            )?;
            for t in types {
                for (queue, n) in t.queue_depths() {
                    let labels = [("actor", t.name()), ("queue", queue.as_str())];
                    ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "action_duration_seconds",
                "How long actions ran in their actor, by actor type",
                None,
                MetricType::Histogram,
            )?;
            for t in types {
                let labels = [("actor", t.name())];
                encode_histogram(family.encode_family(&labels)?, &t.action_latency())?;
            }
        }
        let storage = metrics.storage();
        let e = encoder.encode_descriptor(
            "storage_commits",
            "Group commits sent to the store",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(storage.commits()).encode(e)?;
        let e = encoder.encode_descriptor(
            "storage_commit_failures",
            "Group commits the store refused or failed",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(storage.failures()).encode(e)?;
        let e = encoder.encode_descriptor(
            "storage_commit_batch_size",
            "Write requests per group commit",
            None,
            MetricType::Histogram,
        )?;
        encode_histogram(e, &storage.batch_size())?;
        let e = encoder.encode_descriptor(
            "storage_commit_duration_seconds",
            "How long the store took per group commit (transaction and fsync)",
            None,
            MetricType::Histogram,
        )?;
        encode_histogram(e, &storage.commit_latency())?;
        Ok(())
    }
}

/// The process series, from `/proc/self` (Linux only; elsewhere none are written).
///
/// `prometheus-client` has no process collector of its own, and the crates that add one pull
/// in more than these few reads need: resident memory and threads from `status`, open file
/// descriptors by listing `fd`, their limit from `limits`.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(process) = proc_self() else {
            return Ok(());
        };
        let mut gauge = |name: &str, help: &str, value: Option<i64>| {
            if let Some(value) = value {
                let e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(value).encode(e)?;
            }
            Ok::<_, std::fmt::Error>(())
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            process.resident_bytes,
        )?;
        gauge(
            "process_open_fds",
            "File descriptors the server process has open",
            process.open_fds,
        )?;
        gauge(
            "process_max_fds",
            "The most file descriptors the server process may open",
            process.max_fds,
        )?;
        gauge(
            "process_threads",
            "Threads of the server process",
            process.threads,
        )?;
        Ok(())
    }
}

/// What `/proc/self` says about this process; a value it could not read is `None`.
#[derive(Debug, Default)]
struct ProcSelf {
    resident_bytes: Option<i64>,
    threads: Option<i64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

fn proc_self() -> Option<ProcSelf> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| i64::try_from(dir.count()).unwrap_or(i64::MAX));
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<i64>().ok())
        });
    Some(ProcSelf {
        resident_bytes: field("VmRSS:").map(|kb| kb.saturating_mul(1024)),
        threads: field("Threads:"),
        open_fds,
        max_fds,
    })
}
