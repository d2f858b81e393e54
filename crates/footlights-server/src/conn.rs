//! One HTTP connection, served by hyper, and the clocks that bound how long its client may
//! take: to send a request head, to send a request body, and to come back with another request.
//!
//! A connection is in one of three phases:
//! - **head**: waiting for a request head, from the moment the connection is accepted or the
//!   first byte of a new request arrives. Cut after the header read timeout.
//! - **idle**: between requests on a kept-alive connection, before any byte of the next one.
//!   Cut after the idle timeout.
//! - **busy**: a request's head is in and its response not yet sent (for an SSE stream, not yet
//!   ended). No clock: the request body has its own deadline ([`TimedBody`]), actions their
//!   own timeouts, and connections their pings and keep-alives.
//!
//! A cut connection is dropped: the socket closes without a response, as nothing was asked yet
//! (head) or nothing is pending (idle). A body that misses its deadline gets a 408 instead.
//!
//! The phase changes at least twice per request, so it is kept where the socket and the
//! service can change it without waking the connection's task: the task looks at it only when
//! its timer fires, then cuts the connection or sets the timer again. A phase that begins
//! after a look cannot end before the shorter of the two timeouts, so looking at least that
//! often is enough for every cut to happen on time.
//!
//! After a WebSocket upgrade hyper lets go of the socket and these clocks stop; the WebSocket
//! has its pings.
//!
//! When the server stops, a connection between requests closes at once and one with a request
//! in progress after its response. A connection that has not sent a byte yet (accepted just
//! before the stop, its request perhaps still on the way) gets [`STOP_FIRST_BYTE_GRACE`] to
//! start its request, which is then served; hyper alone would close it unread.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Sleep};
use tower_service::Service as _;

use crate::shutdown::Stop;

/// How long a client may take, per connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Accepted, or first byte of a request → its whole head.
    pub(crate) header: Duration,
    /// Request head in → the whole body.
    pub(crate) body: Duration,
    /// Response sent → first byte of the next request.
    pub(crate) idle: Duration,
}

/// Where a connection stands; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head since this instant.
    Head(Instant),
    /// Between requests since this instant.
    Idle(Instant),
    /// This many requests without their response sent.
    Busy(usize),
}

impl Phase {
    /// When the connection is cut if nothing changes; `None` never.
    fn deadline(self, timeouts: &Timeouts) -> Option<Instant> {
        match self {
            Phase::Head(since) => since.checked_add(timeouts.header),
            Phase::Idle(since) => since.checked_add(timeouts.idle),
            Phase::Busy(_) => None,
        }
    }
}

/// The phase, and the connection's slot among those without a first request head: shared by
/// the socket, the service and the connection's task.
#[derive(Debug)]
struct Clock {
    state: Mutex<ClockState>,
    /// Notified when the first byte arrives.
    first_bytes: tokio::sync::Notify,
}

#[derive(Debug)]
struct ClockState {
    phase: Phase,
    /// Given back when the first request head is in.
    setup: Option<OwnedSemaphorePermit>,
    /// Whether any byte has arrived on the connection.
    seen_bytes: bool,
}

impl Clock {
    fn state(&self) -> MutexGuard<'_, ClockState> {
        // The state stays consistent whatever panicked while holding the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn phase(&self) -> Phase {
        self.state().phase
    }

    /// A request head is in: one more request in progress.
    fn start_request(&self) {
        let setup = {
            let mut state = self.state();
            state.phase = match state.phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            };
            state.setup.take()
        };
        drop(setup);
    }

    /// A response has been sent (or given up on): one request fewer in progress.
    fn end_request(&self) {
        let mut state = self.state();
        if let Phase::Busy(n) = state.phase {
            state.phase = if n > 1 {
                Phase::Busy(n - 1)
            } else {
                Phase::Idle(Instant::now())
            };
        }
    }

    /// Whether the connection is still waiting for the first byte of its first request.
    fn untouched(&self) -> bool {
        !self.state().seen_bytes
    }

    /// Bytes arrived: on an idle connection, a request head has begun.
    fn bytes_arrived(&self) {
        let mut state = self.state();
        if !state.seen_bytes {
            state.seen_bytes = true;
            // A permit is kept if nobody waits yet.
            self.first_bytes.notify_one();
        }
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::Head(Instant::now());
        }
    }
}

/// What a connection's task needs besides its socket.
#[derive(Debug, Clone)]
pub(crate) struct ConnContext {
    pub(crate) app: Router,
    pub(crate) timeouts: Timeouts,
    /// Fires when the server starts stopping: finish the request in flight, then close.
    pub(crate) stop: Stop,
    /// Fires when the shutdown timeout has passed: close at once, whatever is in progress.
    pub(crate) cut: Stop,
    /// Held while the connection is open; the server waits for every clone to be dropped.
    pub(crate) alive: mpsc::Sender<Infallible>,
    /// Where the socket's traffic is counted.
    pub(crate) bytes: ByteCounters,
}

/// The server's byte counters, shared by every connection.
#[derive(Debug, Clone)]
pub(crate) struct ByteCounters {
    /// Bytes read from sockets.
    pub(crate) read: prometheus_client::metrics::counter::Counter,
    /// Bytes written to sockets.
    pub(crate) written: prometheus_client::metrics::counter::Counter,
}

/// Serves one accepted connection until the client closes it, a clock cuts it, or the server
/// stops. `setup` is the connection's slot among those not yet past their first request head;
/// it is given back as soon as the head is in, or when the connection ends.
pub(crate) async fn serve<I>(
    io: I,
    context: ConnContext,
    setup: OwnedSemaphorePermit,
    client: Option<std::net::IpAddr>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ConnContext {
        app,
        timeouts,
        mut stop,
        mut cut,
        alive,
        bytes,
    } = context;
    let clock = Arc::new(Clock {
        state: Mutex::new(ClockState {
            phase: Phase::Head(Instant::now()),
            setup: Some(setup),
            seen_bytes: false,
        }),
        first_bytes: tokio::sync::Notify::new(),
    });
    let io = TokioIo::new(Watched {
        io,
        clock: Some(clock.clone()),
        counts: Counts::new(bytes),
    });
    let service = ConnService {
        app,
        clock: clock.clone(),
        body_timeout: timeouts.body,
        client,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The clocks here replace hyper's, which runs from the end of one response to the end of
    // the next head and so cannot tell an idle connection from a slow one.
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    // No phase ends sooner than this after it begins.
    let look_every = timeouts.header.min(timeouts.idle);
    let mut timer = pin!(tokio::time::sleep(look_every));
    let mut stopping = false;
    // Once stopping: when a connection that has sent nothing yet is closed.
    let mut untouched_until: Option<Instant> = None;
    // Stopping, but the connection has sent nothing yet: hyper would close it at once, so its
    // graceful shutdown waits for the first byte.
    let mut graceful_pending = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            () = timer.as_mut() => {
                let now = Instant::now();
                if untouched_until.is_some_and(|until| until <= now) && clock.untouched() {
                    tracing::debug!("stopping, and no request came in time; closing");
                    break;
                }
                let phase = clock.phase();
                let deadline = match (phase.deadline(&timeouts), untouched_until) {
                    (Some(d), Some(u)) if clock.untouched() => Some(d.min(u)),
                    (d, _) => d,
                };
                match deadline {
                    Some(deadline) if deadline <= now => {
                        match phase {
                            Phase::Head(_) => tracing::debug!("request head not received in time; closing"),
                            _ => tracing::debug!("connection idle for too long; closing"),
                        }
                        break;
                    }
                    deadline => {
                        let next = now + look_every;
                        timer.as_mut().reset(deadline.map_or(next, |d| d.min(next)));
                    }
                }
            }
            () = stop.wait(), if !stopping => {
                stopping = true;
                // A kept-alive connection between requests closes now; one with a request in
                // progress closes after its response; a new one still serves its first request
                // (its client may have sent it before the stop began), if it comes soon.
                if clock.untouched() {
                    graceful_pending = true;
                    let until = Instant::now() + STOP_FIRST_BYTE_GRACE;
                    untouched_until = Some(until);
                    if timer.deadline() > until {
                        timer.as_mut().reset(until);
                    }
                } else {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = clock.first_bytes.notified(), if graceful_pending => {
                graceful_pending = false;
                conn.as_mut().graceful_shutdown();
            }
            () = cut.wait() => {
                tracing::debug!("shutdown timeout passed; closing");
                break;
            }
        }
    }
    drop(alive);
}

/// How long a connection accepted just before a stop may take to send its first byte.
const STOP_FIRST_BYTE_GRACE: Duration = Duration::from_millis(250);

/// The socket: the first byte of a request on an idle connection starts its head's clock.
#[derive(Debug)]
pub(crate) struct Watched<I> {
    io: I,
    /// Let go once nothing else holds it: after an upgrade, when hyper and the serve loop are
    /// done with the connection, no one reads it any more.
    clock: Option<Arc<Clock>>,
    counts: Counts,
}

/// Bytes read and written by one socket, not yet added to the server's counters: they are
/// added once [`BYTES_FLUSH`] have gathered, and when this is dropped, so that a busy
/// connection does not touch the shared counters every request.
#[derive(Debug)]
pub(crate) struct Counts {
    bytes: ByteCounters,
    read: u64,
    written: u64,
}

/// How many bytes a socket gathers before adding them to the server's counters.
const BYTES_FLUSH: u64 = 64 * 1024;

impl Counts {
    pub(crate) fn new(bytes: ByteCounters) -> Counts {
        Counts {
            bytes,
            read: 0,
            written: 0,
        }
    }

    /// Counts of their own, added to the same counters.
    pub(crate) fn fresh(&self) -> Counts {
        Counts::new(self.bytes.clone())
    }

    pub(crate) fn count_read(&mut self, n: usize) {
        self.read += n as u64;
        if self.read >= BYTES_FLUSH {
            self.bytes.read.inc_by(std::mem::take(&mut self.read));
        }
    }

    pub(crate) fn count_written(&mut self, n: usize) {
        self.written += n as u64;
        if self.written >= BYTES_FLUSH {
            self.bytes.written.inc_by(std::mem::take(&mut self.written));
        }
    }
}

impl Drop for Counts {
    fn drop(&mut self) {
        self.bytes.read.inc_by(self.read);
        self.bytes.written.inc_by(self.written);
    }
}

impl<I> Watched<I> {
    /// Drops the clock if this stream is the last to hold it.
    fn release_clock(&mut self) {
        if self
            .clock
            .as_ref()
            .is_some_and(|c| Arc::strong_count(c) == 1)
        {
            self.clock = None;
        }
    }

    /// The stream and its byte counts, for a WebSocket that reads and writes the stream
    /// itself after an upgrade (the clock only matters before one).
    pub(crate) fn into_parts(self) -> (I, Counts) {
        (self.io, self.counts)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.release_clock();
            if let Some(clock) = &this.clock {
                clock.bytes_arrived();
            }
            this.counts.count_read(read);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.release_clock();
            this.counts.count_written(n);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            this.counts.count_written(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The app as hyper calls it: marks the connection busy for each request until its response
/// is sent, and puts a deadline on request bodies.
#[derive(Debug, Clone)]
struct ConnService {
    app: Router,
    clock: Arc<Clock>,
    body_timeout: Duration,
    /// The client's address, handed to every request as a [`ClientIp`].
    client: Option<std::net::IpAddr>,
}

/// The address of the client a request came from (a request extension), for limits per
/// client. Absent for listeners without IP addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) std::net::IpAddr);

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        self.clock.start_request();
        if let Some(ip) = self.client {
            req.extensions_mut().insert(ClientIp(ip));
        }
        let busy = Busy(self.clock.clone());
        let expired = (!req.body().is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
        let req = match &expired {
            Some(flag) => {
                let deadline = Box::pin(tokio::time::sleep(self.body_timeout));
                req.map(|body| {
                    Body::new(TimedBody {
                        body,
                        deadline,
                        expired: flag.clone(),
                    })
                })
            }
            None => req.map(Body::new),
        };
        // A router is always ready: `poll_ready` need not be awaited.
        let mut app = self.app.clone();
        Box::pin(async move {
            let response = match app.call(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = match expired {
                Some(flag) if flag.load(Ordering::Relaxed) => body_timed_out(),
                _ => response,
            };
            Ok(response.map(|body| Tracked { body, _busy: busy }))
        })
    }
}

/// 408 for a request whose body did not arrive in time; the connection closes after it.
fn body_timed_out() -> Response<Body> {
    let mut response = Response::new(Body::from("request body not received in time\n"));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// One request in progress on a connection, from [`Clock::start_request`] until dropped;
/// the connection turns idle when the last ends.
#[derive(Debug)]
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// A response body that keeps its request counted as in progress until hyper has sent it (or
/// given up on it) and drops it.
#[derive(Debug)]
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The request body missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
struct BodyTimedOut;

/// A request body that fails with [`BodyTimedOut`] once its deadline passes, wherever the
/// handler reading it is. The deadline bounds the whole body, not the gap between chunks, so
/// a client cannot hold the request open by trickling a byte at a time.
#[derive(Debug)]
struct TimedBody {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    /// Set when the deadline passed, so the response can become a 408.
    expired: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
