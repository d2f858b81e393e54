//! The in-process transport: the registry's own client calls actors without any network.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use footlights_client::{Client, Link, LinkSender, Target};
use footlights_protocol::{ActionError, ActorId, ActorKey, ConnId, ToServer, Value};

use crate::conn::ConnRequest;
use crate::instance::{Mailbox, Msg};
use crate::registry::RegistryInner;

/// The in-process transport: calls go straight to actor mailboxes.
#[derive(Debug, Clone)]
pub(crate) struct LocalTransport {
    reg: Weak<RegistryInner>,
}

impl LocalTransport {
    pub(crate) fn new(reg: Weak<RegistryInner>) -> Self {
        LocalTransport { reg }
    }

    fn reg(&self) -> Result<Arc<RegistryInner>, ActionError> {
        self.reg.upgrade().ok_or_else(ActionError::stopping)
    }

    /// Where a call to `target` goes: the registry, the actor's id and, when another node of
    /// the cluster runs the actor, that node's client with the actor addressed by id.
    async fn route(
        &self,
        target: &Target,
    ) -> Result<(Arc<RegistryInner>, ActorId, Option<(Client, Target)>), ActionError> {
        let reg = self.reg()?;
        let id = reg.resolve(target).await?;
        let peer = reg.peer_for(target.name(), &id).await?.map(|peer| {
            let by_id = Target::Id {
                name: target.name().to_owned(),
                id: id.clone(),
            };
            (peer, by_id)
        });
        Ok((reg, id, peer))
    }
}

impl footlights_client::Transport for LocalTransport {
    fn resolve<'a>(
        &'a self,
        target: &'a Target,
    ) -> futures::future::BoxFuture<'a, Result<ActorId, ActionError>> {
        Box::pin(async move { self.reg()?.resolve(target).await })
    }

    fn create<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
        input: Option<Value>,
    ) -> futures::future::BoxFuture<'a, Result<ActorId, ActionError>> {
        Box::pin(async move { self.reg()?.create(name, key, input).await })
    }

    fn queue_send<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        body: Value,
        wait: Option<std::time::Duration>,
        params: Option<&'a Value>,
    ) -> futures::future::BoxFuture<'a, Result<footlights_client::SendOutcome, ActionError>> {
        Box::pin(async move {
            let (reg, id, peer) = self.route(target).await?;
            if let Some((peer, target)) = peer {
                return peer
                    .transport()
                    .queue_send(&target, name, body, wait, params)
                    .await;
            }
            let options = crate::queue::SendOptions { wait };
            let request = ConnRequest::local();
            reg.queue_send(
                (target.name(), &id),
                name,
                body,
                params.cloned(),
                request,
                options,
            )
            .await
        })
    }

    fn action<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        args: Vec<Value>,
        params: Option<&'a Value>,
    ) -> futures::future::BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let (reg, id, peer) = self.route(target).await?;
            if let Some((peer, target)) = peer {
                return peer.transport().action(&target, name, args, params).await;
            }
            reg.call(
                target.name(),
                &id,
                name,
                args,
                params.cloned(),
                ConnRequest::local(),
            )
            .await
        })
    }

    /// Raw requests go to the actor's mailbox; an error is answered as the server answers it
    /// (its HTTP status and a JSON error body), so the in-process and the network client see
    /// the same responses.
    fn fetch<'a>(
        &'a self,
        target: &'a Target,
        request: footlights_client::RawRequest,
        params: Option<&'a Value>,
    ) -> futures::future::BoxFuture<'a, Result<footlights_client::RawResponse, ActionError>> {
        Box::pin(async move {
            let answered = async {
                let (reg, id, peer) = self.route(target).await?;
                if let Some((peer, target)) = peer {
                    return peer.transport().fetch(&target, request, params).await;
                }
                let target = Target::Id {
                    name: target.name().to_owned(),
                    id,
                };
                crate::Registry::from_inner(reg)
                    .request(&target, params.cloned(), request)
                    .await
            };
            Ok(answered.await.unwrap_or_else(|e| error_response(&e)))
        })
    }

    /// Raw WebSockets open on the actor's mailbox; a task moves messages between the
    /// [`RawWebSocket`](footlights_client::RawWebSocket) and the actor.
    fn websocket<'a>(
        &'a self,
        target: &'a Target,
        path: &'a str,
        params: Option<&'a Value>,
    ) -> futures::future::BoxFuture<'a, Result<footlights_client::RawWebSocket, ActionError>> {
        Box::pin(async move {
            let (reg, id, peer) = self.route(target).await?;
            if let Some((peer, target)) = peer {
                return peer.transport().websocket(&target, path, params).await;
            }
            let target = Target::Id {
                name: target.name().to_owned(),
                id,
            };
            let uri = path
                .parse::<http::Uri>()
                .map_err(|_| ActionError::invalid_request(format!("`{path}` is not a URL path")))?;
            let request = ConnRequest::new(http::Method::GET, uri, http::HeaderMap::new());
            let link = crate::Registry::from_inner(reg)
                .websocket(&target, params.cloned(), request)
                .await?;
            Ok(raw::bridge(link))
        })
    }

    fn connect<'a>(
        &'a self,
        target: &'a Target,
        params: Option<&'a Value>,
    ) -> futures::future::BoxFuture<'a, Result<Link, ActionError>> {
        Box::pin(async move {
            let (reg, id, peer) = self.route(target).await?;
            if let Some((peer, target)) = peer {
                return peer.transport().connect(&target, params).await;
            }
            reg.connect(target.name(), &id, params.cloned(), ConnRequest::local())
        })
    }
}

/// The response the server gives for `error`: its HTTP status and a JSON error body.
fn error_response(error: &ActionError) -> footlights_client::RawResponse {
    use footlights_protocol::codec::{Dialect, Encoding, HttpResponseError, LATEST_VERSION};
    let body = HttpResponseError::new(error.clone()).encode(
        Encoding::Json,
        LATEST_VERSION,
        Dialect::Compat,
    );
    let mut response = footlights_client::RawResponse::new(body.into());
    *response.status_mut() = http::StatusCode::from_u16(error.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// In-process raw WebSockets: the client's socket on one side, the actor's [`RawLink`] on the
/// other.
///
/// [`RawLink`]: crate::RawLink
mod raw {
    use footlights_client::{
        CloseReason, RawMessage, RawSocketEvent, RawSocketSender, RawWebSocket,
    };
    use footlights_protocol::ActionError;
    use tokio::sync::mpsc;

    use crate::raw::{RawEvent, RawLink, WsMessage};

    /// What the client's socket asks of the bridge.
    enum Out {
        Message(RawMessage),
        Close(u16, String),
    }

    #[derive(Debug)]
    struct Sender(mpsc::UnboundedSender<Out>);

    impl RawSocketSender for Sender {
        fn send(&self, msg: RawMessage) -> Result<(), ActionError> {
            self.0.send(Out::Message(msg)).map_err(|_| {
                ActionError::new("client", "connection_closed", "the socket is closed")
            })
        }

        fn close(&self, code: u16, reason: &str) {
            let _ = self.0.send(Out::Close(code, reason.to_owned()));
        }
    }

    /// A socket whose messages a task moves to and from the actor until either side closes.
    pub(super) fn bridge(link: RawLink) -> RawWebSocket {
        let (out_tx, mut out) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let RawLink {
            sender,
            events: mut from_actor,
        } = link;
        tokio::spawn(async move {
            let report = |event| {
                let _ = events_tx.send(event);
            };
            loop {
                tokio::select! {
                    event = from_actor.recv() => match event {
                        Some(RawEvent::Open) => {}
                        Some(RawEvent::Message(WsMessage::Text(text))) => {
                            report(RawSocketEvent::Message(RawMessage::Text(text)));
                        }
                        Some(RawEvent::Message(WsMessage::Binary(bytes))) => {
                            report(RawSocketEvent::Message(RawMessage::Binary(bytes)));
                        }
                        Some(RawEvent::Closed { code, reason }) => {
                            return report(RawSocketEvent::Closed(CloseReason { code, reason }));
                        }
                        None => return report(RawSocketEvent::Closed(CloseReason::going_away())),
                    },
                    cmd = out.recv() => match cmd {
                        Some(Out::Message(RawMessage::Text(text))) => {
                            if sender.send(WsMessage::Text(text)).is_err() {
                                return report(RawSocketEvent::Closed(CloseReason::going_away()));
                            }
                        }
                        Some(Out::Message(RawMessage::Binary(bytes))) => {
                            if sender.send(WsMessage::Binary(bytes)).is_err() {
                                return report(RawSocketEvent::Closed(CloseReason::going_away()));
                            }
                        }
                        Some(Out::Close(code, reason)) => {
                            sender.close(code, reason.clone());
                            return report(RawSocketEvent::Closed(CloseReason { code, reason }));
                        }
                        None => return sender.close(1000, ""),
                    },
                }
            }
        });
        RawWebSocket::new(Box::new(Sender(out_tx)), events)
    }
}

/// The id a link's messages are addressed with. Shared with the actor when a resume asks
/// for an id the actor does not keep: the actor then opens a connection under a fresh id of
/// its own choosing and writes it here before anything else reaches the link.
pub(crate) type IdSlot = Arc<Mutex<ConnId>>;

/// Where a link's messages go: the actor's mailbox while its instance lives, and through the
/// registry once that instance has gone to sleep with the connection parked (hibernation). The
/// registry then starts the next instance, which takes the connection back, and its mailbox is
/// kept for the messages that follow.
#[derive(Debug)]
pub(crate) struct Address {
    reg: Weak<RegistryInner>,
    name: String,
    id: ActorId,
    mailbox: Mutex<Mailbox>,
}

impl Address {
    pub(crate) fn new(reg: Weak<RegistryInner>, name: &str, id: ActorId, mailbox: Mailbox) -> Self {
        Address {
            reg,
            name: name.to_owned(),
            id,
            mailbox: Mutex::new(mailbox),
        }
    }

    /// Delivers `msg` to the actor's current instance, waking it if it sleeps. Fails when
    /// the registry is gone or cannot start the actor.
    pub(crate) fn send(&self, msg: Msg) -> Result<(), ActionError> {
        let mut mailbox = self.mailbox.lock().unwrap_or_else(PoisonError::into_inner);
        let Err(tokio::sync::mpsc::error::SendError(msg)) = mailbox.send(msg) else {
            return Ok(());
        };
        let reg = self.reg.upgrade().ok_or_else(ActionError::stopping)?;
        // Under the lock: this link's messages keep their order across the change.
        *mailbox = reg.send(&self.name, &self.id, Some(msg))?;
        Ok(())
    }
}

/// The client side of an in-process connection.
#[derive(Debug)]
pub(crate) struct LocalLink {
    to: Address,
    conn_id: IdSlot,
    link: u64,
}

impl LocalLink {
    pub(crate) fn new(to: Address, conn_id: ConnId, link: u64) -> Self {
        Self::with_slot(to, Arc::new(Mutex::new(conn_id)), link)
    }

    pub(crate) fn with_slot(to: Address, conn_id: IdSlot, link: u64) -> Self {
        LocalLink { to, conn_id, link }
    }

    fn id(&self) -> ConnId {
        self.conn_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl LinkSender for LocalLink {
    fn send(&self, msg: ToServer) -> Result<(), ActionError> {
        self.to
            .send(Msg::FromConn {
                conn_id: self.id(),
                msg,
            })
            .map_err(|_| {
                ActionError::new("client", "connection_closed", "the connection is closed")
            })
    }

    fn close(&self) {
        let _ = self.to.send(Msg::ConnClosed {
            conn_id: self.id(),
            link: Some(self.link),
        });
    }

    fn lost(&self) {
        let _ = self.to.send(Msg::ConnLost {
            conn_id: self.id(),
            link: self.link,
        });
    }
}
