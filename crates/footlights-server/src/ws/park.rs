//! A `/connect` socket whose actor sleeps, kept at the smallest cost.
//!
//! While an actor hibernates, its connections' sockets stay open with nothing to do. Such a
//! socket is **parked**: its task ends, taking the WebSocket state (read and write buffers,
//! timers, the pump's futures) with it, and a small task keeps the stream and the
//! connection's records until something happens: the client sends a byte, the actor sends
//! something, a ping is due, a resume takes the connection over, or the server stops. Then
//! the WebSocket is made again on the same stream and a full task serves it.
//!
//! Letting go of the WebSocket state is only safe between messages: [`Tracked`] follows the
//! frame boundaries of what the client sent, so the connection parks only when every byte
//! read from the stream belongs to a message the connection has already taken.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tracing::Instrument;

use super::bell::BellWait;
use super::conn::{End, Live};
use super::upgrade::{Io, RawIo, Socket};
use crate::resume;

/// A stream that follows the WebSocket frames read through it: how many whole messages (data
/// messages and control frames) have been read, and whether the bytes read so far end
/// between two messages.
#[derive(Debug)]
pub(crate) struct Tracked<S> {
    inner: S,
    scan: FrameScan,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S) -> Self {
        Tracked {
            inner,
            scan: FrameScan::default(),
        }
    }

    /// Follows `inner` from a point between two messages, after `messages` whole ones, and
    /// after the bytes `read` from it since that point without this follower.
    pub(crate) fn resumed(inner: S, messages: u64, read: &[u8]) -> Self {
        let mut scan = FrameScan {
            messages,
            ..FrameScan::default()
        };
        scan.scan(read);
        Tracked { inner, scan }
    }

    /// The stream, borrowed.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream itself.
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }

    /// Whether the bytes read so far end between two messages and the reader has taken all
    /// `taken` of them: nothing read waits in the reader's buffers.
    pub(crate) fn at_rest(&self, taken: u64) -> bool {
        self.scan.between_messages() && self.scan.messages == taken
    }
}

/// Where the client's byte stream stands in its frames (RFC 6455 §5.2). Only headers are
/// looked at; payloads are counted past.
#[derive(Debug, Default)]
struct FrameScan {
    /// The frame header read so far (at most 2 + 8 + 4 bytes).
    head: [u8; 14],
    /// How many bytes of `head` are read.
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// A data message's first frames came, its last (FIN) not yet.
    fragmented: bool,
    /// Whole messages read: data messages and control frames.
    messages: u64,
}

impl FrameScan {
    fn between_messages(&self) -> bool {
        self.have == 0 && self.payload_left == 0 && !self.fragmented
    }

    /// The header's length once its first two bytes are known.
    fn head_len(&self) -> usize {
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn payload_len(&self) -> u64 {
        match self.head[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&self.head[2..10]);
                u64::from_be_bytes(len)
            }
            short => u64::from(short),
        }
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[skip..];
                self.payload_left -= skip as u64;
                if self.payload_left == 0 {
                    self.frame_done();
                }
                continue;
            }
            self.head[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have >= 2 && self.have == self.head_len() {
                self.have = 0;
                self.payload_left = self.payload_len();
                if self.payload_left == 0 {
                    self.frame_done();
                }
            }
        }
    }

    fn frame_done(&mut self) {
        let fin = self.head[0] & 0x80 != 0;
        let control = self.head[0] & 0x08 != 0;
        if control {
            self.messages += 1;
        } else if fin {
            self.messages += 1;
            self.fragmented = false;
        } else {
            self.fragmented = true;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.scan.scan(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What woke a parked socket.
enum Woke {
    /// The client sent this byte: the first of its next frame.
    Byte(u8),
    /// Something for the full task: the actor sends again, a ping is due (at `ping_at`), or
    /// the server stops.
    Serve { ping_at: Option<Instant> },
    /// A resume on another socket takes the connection over.
    Superseded(tokio::sync::oneshot::Sender<()>),
    /// The stream ended or broke.
    Dropped,
}

/// Parks a connection: the WebSocket state is dropped and a small task waits on the stream.
/// The caller's task should end right after, so that its own state is freed too.
pub(super) fn park(live: Box<Live>, socket: Socket) {
    // Parked between two messages (see `Tracked::at_rest`): the frame follower starts again
    // from `received` when the socket is served again, and is not kept meanwhile.
    let io = socket.into_inner().into_inner();
    let shared = &live.conn.shared;
    shared.metrics.parked.inc();
    let wait = Parked {
        ping_due: Instant::now() + shared.config.ws_ping_interval,
        bell: shared.parked_bell.join(),
        parked: Some((live, io)),
    };
    // Most servers trace nothing: a disabled span need not take room in every parked task.
    let span = tracing::Span::current();
    if span.is_disabled() {
        tokio::spawn(wait);
    } else {
        tokio::spawn(wait.instrument(span));
    }
}

/// A parked socket's task: the stream, the connection's records and its place at the
/// server's bell (rung at shutdown and every quarter ping interval). Its size is what a
/// parked socket costs beyond its records, so it is written out rather than an `async` block
/// whose state would hold every wait of a `select!`. Once something needs the connection
/// served, it hands it to a new full task and ends. While it lives, the socket is counted on
/// the `websockets_parked` gauge.
struct Parked {
    parked: Option<(Box<Live>, RawIo)>,
    ping_due: Instant,
    bell: BellWait,
}

impl Future for Parked {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some((live, io)) = this.parked.as_mut() else {
            return Poll::Ready(());
        };
        let woke = loop {
            if let Poll::Ready(done) = resume::poll_retired(&mut live.conn.live, cx) {
                break Woke::Superseded(done);
            }
            if live.events.poll_unparked(cx).is_ready() {
                break Woke::Serve { ping_at: None };
            }
            let mut byte = [0u8; 1];
            let mut buf = ReadBuf::new(&mut byte);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => match buf.filled().first() {
                    Some(&byte) => break Woke::Byte(byte),
                    None => break Woke::Dropped,
                },
                Poll::Ready(Err(_)) => break Woke::Dropped,
                Poll::Pending => {}
            }
            // The place at the bell was taken before this look, so a stop after it rings the
            // bell: a socket that parks while the server stops is not left waiting.
            if live.conn.shared.stop.is_stopping() {
                break Woke::Serve { ping_at: None };
            }
            ready!(live.conn.shared.parked_bell.poll_rung(&mut this.bell, cx));
            // Rung: the next look waits for the next ring.
            let now = Instant::now();
            if now >= this.ping_due {
                break Woke::Serve { ping_at: Some(now) };
            }
        };
        if let Some((live, io)) = this.release() {
            tracing::trace!("socket unparked");
            let read = match &woke {
                Woke::Byte(byte) => std::slice::from_ref(byte),
                _ => &[],
            };
            let io = Tracked::resumed(io, live.conn.received, read);
            tokio::spawn(unpark(live, io, woke).instrument(tracing::Span::current()));
        }
        Poll::Ready(())
    }
}

impl Parked {
    /// Gives back the place at the bell and the gauge's count, once, with the records.
    fn release(&mut self) -> Option<(Box<Live>, RawIo)> {
        let (live, io) = self.parked.take()?;
        let shared = &live.conn.shared;
        shared.parked_bell.leave(&self.bell);
        shared.metrics.parked.dec();
        Some((live, io))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // A task dropped without having woken (at runtime shutdown) still holds them.
        self.release();
    }
}

/// Makes the WebSocket again on a parked socket's stream and serves it.
async fn unpark(live: Box<Live>, io: Io, woke: Woke) {
    let every = live.conn.shared.config.ws_ping_interval;
    let later = Instant::now() + every;
    let (part, first, ping_at) = match woke {
        Woke::Byte(byte) => (vec![byte], None, later),
        Woke::Serve { ping_at } => (Vec::new(), None, ping_at.unwrap_or(later)),
        Woke::Superseded(done) => (Vec::new(), Some(End::Superseded(done)), later),
        Woke::Dropped => (Vec::new(), Some(End::Dropped), later),
    };
    let socket = super::conn::socket_from(io, part, &live.conn.shared).await;
    // A task of its own, so that the connection's task does not also keep this one's state.
    let serve = super::conn::serve(live, socket, first, ping_at);
    tokio::spawn(serve.instrument(tracing::Span::current()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
        );
        out
    }

    #[test]
    fn whole_messages_are_counted_wherever_reads_split_them() {
        let mut stream = Vec::new();
        stream.extend(frame(true, 0x1, b"hello"));
        stream.extend(frame(true, 0x2, &[7; 300]));
        stream.extend(frame(true, 0x9, b""));
        stream.extend(frame(true, 0x2, &vec![9; 70_000]));
        for chunk in [1, 2, 3, 7, 512, stream.len()] {
            let mut scan = FrameScan::default();
            let mut ends = Vec::new();
            for piece in stream.chunks(chunk) {
                scan.scan(piece);
                ends.push((scan.messages, scan.between_messages()));
            }
            assert_eq!(scan.messages, 4, "read {chunk} bytes at a time");
            assert!(scan.between_messages());
            // Partway through, a read that ends inside a frame is never between messages.
            if chunk == 7 {
                assert!(ends.iter().any(|(_, rest)| !rest));
            }
        }
    }

    #[test]
    fn a_fragmented_message_is_one_message_and_not_at_rest_until_its_last_frame() {
        let mut scan = FrameScan::default();
        scan.scan(&frame(false, 0x1, b"he"));
        assert_eq!(scan.messages, 0);
        assert!(!scan.between_messages());
        // A control frame between fragments is a message of its own.
        scan.scan(&frame(true, 0x9, b"p"));
        assert_eq!(scan.messages, 1);
        assert!(!scan.between_messages());
        scan.scan(&frame(false, 0x0, b"ll"));
        scan.scan(&frame(true, 0x0, b"o"));
        assert_eq!(scan.messages, 2);
        assert!(scan.between_messages());
    }

    #[test]
    fn a_follower_resumed_after_a_byte_read_without_it_stays_in_step() {
        let next = frame(true, 0x1, b"wake");
        let mut tracked = Tracked::resumed((), 3, &next[..1]);
        assert!(!tracked.at_rest(3), "a frame has begun");
        tracked.scan.scan(&next[1..]);
        assert!(tracked.at_rest(4));
        assert!(Tracked::resumed((), 3, &[]).at_rest(3));
    }

    #[test]
    fn at_rest_needs_every_read_message_taken() {
        let mut tracked = Tracked::new(());
        tracked.scan.scan(&frame(true, 0x1, b"a"));
        tracked.scan.scan(&frame(true, 0x1, b"b"));
        assert!(!tracked.at_rest(1), "one message still waits in the reader");
        assert!(tracked.at_rest(2));
        tracked.scan.scan(&frame(true, 0x1, b"cd")[..3]);
        assert!(!tracked.at_rest(2), "half a frame was read");
    }
}
