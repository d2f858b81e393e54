//! The sending half shared by the network transports: the connection driver's messages go
//! over a channel to the task that owns the socket (WebSocket) or the posts (SSE).

use footlights_protocol::{ActionError, ToServer};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::error::connection_closed;
use crate::transport::LinkSender;

/// Requests from the connection driver to a transport's task.
pub(super) enum Out {
    /// A message for the actor.
    Message(ToServer),
    /// Close the link, then answer on the sender (if any) once the close went out.
    Close(Option<oneshot::Sender<()>>),
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Out")
    }
}

/// A [`LinkSender`] that forwards to a transport's task.
#[derive(Debug)]
pub(super) struct ChannelSender {
    pub(super) out: mpsc::UnboundedSender<Out>,
}

impl LinkSender for ChannelSender {
    fn send(&self, msg: ToServer) -> Result<(), ActionError> {
        self.out
            .send(Out::Message(msg))
            .map_err(|_| connection_closed())
    }

    fn close(&self) {
        let _ = self.out.send(Out::Close(None));
    }

    fn close_gracefully(&self) -> BoxFuture<'static, ()> {
        let (done, rx) = oneshot::channel();
        let sent = self.out.send(Out::Close(Some(done))).is_ok();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }
}
