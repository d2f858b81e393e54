//! A `/connect` socket the runtime writes broadcasts to itself.
//!
//! A broadcast to 10,000 subscribers used to queue the event on 10,000 links and wake 10,000
//! tasks, each of which framed the shared bytes and wrote them. Here the thread that
//! broadcasts writes each subscriber's frame to its socket at once, with one non-blocking
//! write and no wake-up ([`DirectWriter`]). What it cannot write whole waits in the socket's
//! buffer for the connection's task, which it wakes.
//!
//! Every write to the socket, the task's (answers, pings, closes) and the broadcaster's,
//! goes through one lock and one buffer, so the bytes of two frames never interleave. A
//! broadcast is written directly only when nothing queued before it is still on its way:
//! - the connection serves (it sent `Init` and is not parking or closing);
//! - the link's channel is empty ([`Backlog::bytes`] is zero);
//! - the task is not between taking a message from the channel and writing it (`busy`);
//! - no earlier frame waits in the buffer.
//!
//! Otherwise the event takes the link's channel, as every other message does.
//!
//! Only plain TCP sockets served by this crate's listener loop can be taken over: the upgrade
//! hands back the [`TcpStream`]. Any other stream keeps the queued path ([`RawIo::Upgraded`]).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use axum::body::Bytes;
use footlights_client::{Backlog, DirectWriter};
use footlights_protocol::ToClient;
use futures::task::AtomicWaker;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::conn::{Counts, Watched};
use crate::peer::Peer;

/// What a WebSocket reads and writes: the bare TCP stream shared with the broadcaster, or
/// hyper's upgraded stream when the connection came some other way.
#[derive(Debug)]
pub(crate) enum RawIo {
    /// A plain TCP socket; broadcasts may be written to it directly.
    Direct(DirectIo),
    /// Any other stream; everything goes through the connection's task.
    Upgraded(TokioIo<hyper::upgrade::Upgraded>),
}

impl RawIo {
    /// Takes the TCP stream back from hyper when the connection is a plain one.
    pub(crate) fn new(upgraded: hyper::upgrade::Upgraded, shared: &DirectSettings) -> RawIo {
        match upgraded.downcast::<TokioIo<Watched<TcpStream>>>() {
            Ok(parts) => {
                let (stream, counts) = parts.io.into_inner().into_parts();
                let (reader, writer) = stream.into_split();
                // hyper's leftover is a view of its read buffer (8 KiB and more): copied, so
                // that the buffer goes now rather than with the connection.
                RawIo::Direct(DirectIo {
                    reader,
                    read: counts.fresh(),
                    direct: Arc::new(Direct::new(writer, counts, shared)),
                    early: detached(&parts.read_buf),
                })
            }
            Err(upgraded) => {
                tracing::debug!("not a plain TCP stream: broadcasts go through the task");
                RawIo::Upgraded(TokioIo::new(upgraded))
            }
        }
    }

    /// The socket's shared writer, if broadcasts may be written to it directly.
    pub(crate) fn direct(&self) -> Option<&Arc<Direct>> {
        match self {
            RawIo::Direct(io) => Some(&io.direct),
            RawIo::Upgraded(_) => None,
        }
    }
}

/// `bytes` in an allocation of their own (none when empty).
fn detached(bytes: &[u8]) -> Bytes {
    if bytes.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(bytes)
    }
}

/// What every direct socket of a server shares.
#[derive(Debug, Clone)]
pub(crate) struct DirectSettings {
    /// The largest message the server sends (`max_outgoing`); a larger event takes the
    /// queued path, where the connection is closed for it.
    pub(crate) max_outgoing: usize,
    /// Counts the events written directly.
    pub(crate) written: Counter,
}

/// One socket's writing side, shared by its task and the runtime's broadcasts.
#[derive(Debug)]
pub(crate) struct Direct {
    writer: OwnedWriteHalf,
    out: Mutex<Out>,
    /// A broadcast left bytes in `pending` for the task, which `flush_waker` wakes.
    wants_flush: AtomicBool,
    flush_waker: AtomicWaker,
    settings: DirectSettings,
}

#[derive(Debug)]
struct Out {
    /// Bytes accepted and not yet written, in order. Empty (and without an allocation)
    /// nearly always: it holds what the kernel's buffer had no room for.
    pending: Vec<u8>,
    /// How the connection's messages are encoded.
    peer: Option<Peer>,
    /// The connection serves: broadcasts may go directly.
    serving: bool,
    /// The task took a message from the link and has not written it yet.
    busy: bool,
    /// Bytes written (those read are counted by [`DirectIo`]).
    counts: Counts,
}

impl Direct {
    fn new(writer: OwnedWriteHalf, counts: Counts, settings: &DirectSettings) -> Direct {
        Direct {
            writer,
            out: Mutex::new(Out {
                pending: Vec::new(),
                peer: None,
                serving: false,
                busy: false,
                counts,
            }),
            wants_flush: AtomicBool::new(false),
            flush_waker: AtomicWaker::new(),
            settings: settings.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection serves with `peer`'s encoding (again, after a version change): from now
    /// on broadcasts may be written directly.
    pub(crate) fn serve(&self, peer: Peer) {
        let mut out = self.lock();
        out.peer = Some(peer);
        out.serving = true;
    }

    /// The connection stops serving (it parks or closes): broadcasts are queued again.
    pub(crate) fn stop_serving(&self) {
        self.lock().serving = false;
        // The serving task's waker would keep that task's memory (~2 KB) alive for as long as
        // the socket stays parked.
        drop(self.flush_waker.take());
    }

    /// The task takes a message off the link: `take` counts it taken, and until
    /// [`written`](Self::written) no broadcast may overtake it.
    pub(crate) fn taking(&self, take: impl FnOnce()) {
        let mut out = self.lock();
        out.busy = true;
        take();
    }

    /// The task's frame is written (or waits in the buffer, ahead of anything later).
    pub(crate) fn written(&self) {
        self.lock().busy = false;
    }

    /// Ready once bytes wait in the buffer, left there by a broadcast the kernel took only
    /// part of: the task then flushes them.
    pub(crate) fn poll_wants_flush(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.wants_flush.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.flush_waker.register(cx.waker());
        // Set between the look and the registration: seen now.
        if self.wants_flush.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn stream(&self) -> &TcpStream {
        self.writer.as_ref()
    }

    /// Writes `head` then `body` now, in one system call, keeping whatever the kernel does not
    /// take. Call with `out` held and nothing pending.
    fn write_or_keep(&self, out: &mut Out, head: &[u8], body: &[u8]) -> io::Result<()> {
        let total = head.len() + body.len();
        let attempt = if head.is_empty() {
            self.stream().try_write(body)
        } else if total <= SMALL_FRAME {
            // A plain `send` costs less than a `writev` of two pieces.
            let mut frame = [0u8; SMALL_FRAME];
            frame[..head.len()].copy_from_slice(head);
            frame[head.len()..total].copy_from_slice(body);
            self.stream().try_write(&frame[..total])
        } else {
            self.stream()
                .try_write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
        };
        let written = match attempt {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        out.counts.count_written(written);
        if written < total {
            let from_head = written.min(head.len());
            out.pending.extend_from_slice(&head[from_head..]);
            out.pending.extend_from_slice(&body[written - from_head..]);
        }
        Ok(())
    }

    /// Writes what waits in the buffer, as far as the kernel takes it.
    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut out = self.lock();
                if out.pending.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                match self.stream().try_write(&out.pending) {
                    Ok(n) => {
                        out.counts.count_written(n);
                        if n == out.pending.len() {
                            // Let the allocation go: the buffer is nearly always empty.
                            out.pending = Vec::new();
                            return Poll::Ready(Ok(()));
                        }
                        out.pending.drain(..n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(self.stream().poll_write_ready(cx))?;
        }
    }
}

impl DirectWriter for Direct {
    fn write_now(&self, msg: &ToClient, backlog: &Backlog) -> bool {
        let ToClient::Broadcast(event) = msg else {
            return false;
        };
        let mut out = self.lock();
        let Some(peer) = out.peer else {
            return false;
        };
        if !out.serving || out.busy || !out.pending.is_empty() || backlog.bytes() != 0 {
            return false;
        }
        let payload = event.encoded(peer.encoding, peer.version, peer.dialect);
        if payload.len() > self.settings.max_outgoing {
            return false;
        }
        // Text for JSON, as the task frames it. JSON is written by serde_json, always UTF-8:
        // the shared bytes need no check per subscriber.
        let text = !peer.encoding.is_binary();
        let (header, len) = frame_header(text, payload.len());
        // A broken socket is the task's to find: the event takes the queue.
        if self
            .write_or_keep(&mut out, &header[..len], &payload)
            .is_err()
        {
            return false;
        }
        let cut = !out.pending.is_empty();
        drop(out);
        if cut {
            self.wants_flush.store(true, Ordering::Release);
            self.flush_waker.wake();
        }
        self.settings.written.inc();
        tracing::trace!(event = event.name(), "event written directly");
        true
    }
}

/// Frames up to this size are copied into one buffer and written with one `send`.
const SMALL_FRAME: usize = 512;

/// The header of an unmasked, final server frame (RFC 6455 §5.2): the bytes and how many
/// of them are used.
fn frame_header(text: bool, len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x80 | if text { 0x1 } else { 0x2 };
    if len < 126 {
        header[1] = len as u8;
        (header, 2)
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        (header, 4)
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (header, 10)
    }
}

/// The connection task's handle on a direct socket: it reads the stream, and writes through
/// the shared buffer so that its frames and the broadcasts keep their order.
#[derive(Debug)]
pub(crate) struct DirectIo {
    reader: OwnedReadHalf,
    /// Bytes read (those written are counted by [`Direct`]).
    read: Counts,
    direct: Arc<Direct>,
    /// What hyper had read past the upgrade request: read first.
    early: Bytes,
}

impl AsyncRead for DirectIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.early.is_empty() {
            let n = this.early.len().min(buf.remaining());
            buf.put_slice(&this.early.split_to(n));
            if this.early.is_empty() {
                this.early = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.reader).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        this.read.count_read(read);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for DirectIo {
    /// Takes all of `buf`: written now as far as the kernel takes it, the rest kept in order
    /// for [`poll_flush`](AsyncWrite::poll_flush), which is where a full socket waits.
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let direct = &self.direct;
        let mut out = direct.lock();
        if out.pending.is_empty() {
            direct.write_or_keep(&mut out, &[], buf)?;
        } else {
            out.pending.extend_from_slice(buf);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.direct.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.direct.poll_drain(cx))?;
        let stream = socket2::SockRef::from(self.direct.stream());
        Poll::Ready(stream.shutdown(std::net::Shutdown::Write))
    }
}

impl AsyncRead for RawIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawIo::Direct(io) => Pin::new(io).poll_read(cx, buf),
            RawIo::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RawIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RawIo::Direct(io) => Pin::new(io).poll_write(cx, buf),
            RawIo::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawIo::Direct(io) => Pin::new(io).poll_flush(cx),
            RawIo::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawIo::Direct(io) => Pin::new(io).poll_shutdown(cx),
            RawIo::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ByteCounters;
    use footlights_protocol::codec::{Dialect, Encoding};
    use footlights_protocol::{SharedEvent, Value};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A connected pair on 127.0.0.1: the server's end as a direct socket, the client's as a
    /// blocking std stream, and the server's byte counters.
    async fn pair() -> (Arc<Direct>, DirectIo, std::net::TcpStream, ByteCounters) {
        pair_with(1 << 20).await
    }

    async fn pair_with(
        max_outgoing: usize,
    ) -> (Arc<Direct>, DirectIo, std::net::TcpStream, ByteCounters) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr));
        let (server, _) = listener.accept().await.unwrap();
        let client = client.await.unwrap().unwrap();
        let bytes = ByteCounters {
            read: Counter::default(),
            written: Counter::default(),
        };
        let settings = DirectSettings {
            max_outgoing,
            written: Counter::default(),
        };
        let (reader, writer) = server.into_split();
        let direct = Arc::new(Direct::new(writer, Counts::new(bytes.clone()), &settings));
        let io = DirectIo {
            reader,
            read: Counts::new(bytes.clone()),
            direct: direct.clone(),
            early: Bytes::new(),
        };
        (direct, io, client, bytes)
    }

    fn json() -> Peer {
        Peer {
            encoding: Encoding::Json,
            dialect: Dialect::Compat,
            version: 3,
        }
    }

    fn broadcast(n: i64, pad: usize) -> ToClient {
        let args = vec![Value::Int(n), Value::from("x".repeat(pad))];
        ToClient::Broadcast(SharedEvent::new("tick", args))
    }

    /// Reads WebSocket messages off the client's end until it closes, as a client would.
    fn read_all(client: std::net::TcpStream) -> std::thread::JoinHandle<Vec<tungstenite::Message>> {
        std::thread::spawn(move || {
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                client,
                tungstenite::protocol::Role::Client,
                None,
            );
            let mut got = Vec::new();
            while let Ok(msg) = ws.read() {
                got.push(msg);
            }
            got
        })
    }

    /// The number of a `tick` event sent as JSON text.
    fn tick_of(msg: &tungstenite::Message) -> i64 {
        let tungstenite::Message::Text(text) = msg else {
            panic!("expected a text frame, got {msg:?}");
        };
        let decoded = footlights_protocol::codec::decode_to_client(
            text.as_bytes(),
            Encoding::Json,
            Dialect::Compat,
        );
        match decoded {
            Ok((ToClient::Event { name, args }, _)) if name == "tick" => match args.first() {
                Some(Value::Int(n)) => *n,
                other => panic!("no number: {other:?}"),
            },
            other => panic!("not a tick: {other:?}"),
        }
    }

    #[test]
    fn headers_follow_rfc_6455_lengths() {
        assert_eq!(&frame_header(true, 5).0[..2], &[0x81, 5]);
        assert_eq!(&frame_header(false, 125).0[..2], &[0x82, 125]);
        assert_eq!(frame_header(false, 126).1, 4);
        assert_eq!(&frame_header(false, 126).0[..4], &[0x82, 126, 0, 126]);
        assert_eq!(&frame_header(true, 65_535).0[..4], &[0x81, 126, 0xff, 0xff]);
        let (header, len) = frame_header(true, 65_536);
        assert_eq!(len, 10);
        assert_eq!(&header[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[tokio::test]
    async fn a_broadcast_is_written_only_when_nothing_waits_ahead_of_it() {
        let (direct, _io, _client, _) = pair().await;
        let backlog = Backlog::default();
        assert!(
            !direct.write_now(&broadcast(1, 0), &backlog),
            "not serving yet"
        );
        direct.serve(json());
        let response = ToClient::ActionResponse {
            id: 1,
            output: Value::Int(1),
        };
        assert!(
            !direct.write_now(&response, &backlog),
            "only broadcasts go directly"
        );
        backlog.sent(&response);
        assert!(
            !direct.write_now(&broadcast(1, 0), &backlog),
            "a response is queued"
        );
        direct.taking(|| backlog.taken(&response));
        assert!(
            !direct.write_now(&broadcast(1, 0), &backlog),
            "taken, not written"
        );
        direct.written();
        assert!(direct.write_now(&broadcast(1, 0), &backlog));
        assert_eq!(direct.settings.written.get(), 1);
        direct.stop_serving();
        assert!(
            !direct.write_now(&broadcast(2, 0), &backlog),
            "parking or closing"
        );
        let (small, _io, _client, _) = pair_with(10).await;
        small.serve(json());
        assert!(
            !small.write_now(&broadcast(3, 0), &backlog),
            "over the outgoing limit: the task closes the connection"
        );
    }

    /// A parked socket keeps its shared writing side; the task that served it must not stay
    /// alive through the waker it left there.
    #[tokio::test]
    async fn stopping_lets_go_of_the_serving_tasks_waker() {
        struct Task;
        impl futures::task::ArcWake for Task {
            fn wake_by_ref(_: &Arc<Self>) {}
        }
        let (direct, _io, _client, _) = pair().await;
        let task = Arc::new(Task);
        let waker = futures::task::waker(task.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(direct.poll_wants_flush(&mut cx).is_pending());
        drop(waker);
        assert_eq!(
            Arc::strong_count(&task),
            2,
            "the waker is kept while serving"
        );
        direct.stop_serving();
        assert_eq!(Arc::strong_count(&task), 1, "and let go when serving stops");
    }

    /// A client that stops reading fills the socket: the broadcast the kernel takes only part
    /// of leaves the rest for the task, later broadcasts are refused, the task's own frames
    /// queue behind it, and the client reads every frame whole and in order.
    #[tokio::test]
    async fn a_full_socket_keeps_every_frame_whole_and_in_order() {
        let (direct, mut io, client, bytes) = pair().await;
        socket2::SockRef::from(direct.stream())
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(4096)
            .unwrap();
        let backlog = Backlog::default();
        direct.serve(json());
        let wants_flush = tokio::spawn({
            let direct = direct.clone();
            async move { std::future::poll_fn(|cx| direct.poll_wants_flush(cx)).await }
        });
        tokio::task::yield_now().await;
        let mut direct_writes = 0;
        let mut n = 0;
        // Large frames (header and payload in one `writev`) between small ones (copied into
        // one `send`).
        let pad = |n: i64| if n % 2 == 0 { 1000 } else { 100 };
        while direct.write_now(&broadcast(n, pad(n)), &backlog) {
            n += 1;
            direct_writes += 1;
            if !direct.lock().pending.is_empty() {
                break;
            }
            assert!(n < 100_000, "the socket never filled");
        }
        assert!(!direct.lock().pending.is_empty(), "a frame was cut short");
        tokio::time::timeout(Duration::from_secs(10), wants_flush)
            .await
            .expect("the task is woken to flush")
            .unwrap();
        assert!(
            !direct.write_now(&broadcast(n, pad(n)), &backlog),
            "nothing overtakes the cut frame"
        );
        // The task's frame (a close, here) goes behind the cut one.
        let close = [0x88, 0x02, 0x03, 0xe8];
        io.write_all(&close).await.unwrap();
        let reader = read_all(client);
        tokio::time::timeout(Duration::from_secs(10), io.flush())
            .await
            .expect("the buffer drains once the client reads")
            .unwrap();
        // The client reads to the end of the stream.
        io.shutdown().await.unwrap();
        let got = tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        let ticks: Vec<i64> = got.iter().filter(|m| !m.is_close()).map(tick_of).collect();
        assert_eq!(ticks, (0..direct_writes).collect::<Vec<_>>());
        assert!(got.last().is_some_and(tungstenite::Message::is_close));
        let ticks_bytes: u64 = got
            .iter()
            .filter(|m| !m.is_close())
            .map(|m| m.len() as u64 + if m.len() >= 126 { 4 } else { 2 })
            .sum();
        let sent = ticks_bytes + close.len() as u64;
        drop((io, direct));
        assert_eq!(bytes.written.get(), sent, "every byte written is counted");
    }
}
