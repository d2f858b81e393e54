//! The ceiling: bare HTTP and WebSocket echo servers that answer the same wire format without
//! any actor behind them, and SQLite fsync'd commits per second.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use footlights_protocol::codec::{self, Dialect, Encoding, HttpActionResponse};
use footlights_protocol::{ActorId, ConnId, ToClient, ToServer, Value};
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Serves a hyper HTTP/1 echo: every request gets `{"output":1}` (or its BARE form).
pub(crate) async fn http_echo(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let json = Bytes::from(
        HttpActionResponse {
            output: Value::Int(1),
        }
        .encode(Encoding::Json, 4, Dialect::Compat),
    );
    let bare = Bytes::from(
        HttpActionResponse {
            output: Value::Int(1),
        }
        .encode(Encoding::Bare, 4, Dialect::Compat),
    );
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (json, bare) = (json.clone(), bare.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (json, bare) = (json.clone(), bare.clone());
                async move {
                    let is_bare = req
                        .headers()
                        .get("x-rivet-encoding")
                        .is_some_and(|v| v == "bare");
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(if is_bare {
                        bare
                    } else {
                        json
                    })))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Serves a WebSocket echo speaking `/connect`: sends `Init`, answers every `ActionRequest` with
/// `ActionResponse { output: 1 }`, ignores everything else.
/// `read_buffer` sets tungstenite's per-connection read buffer (default 128 KiB).
// tungstenite's handshake callback returns its large error type by value.
#[allow(clippy::result_large_err)]
pub(crate) async fn ws_echo(port: u16, read_buffer: Option<usize>) -> anyhow::Result<()> {
    let mut config = WebSocketConfig::default();
    if let Some(n) = read_buffer {
        config = config.read_buffer_size(n).write_buffer_size(0);
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut encoding = Encoding::Json;
            let cb = |req: &Request, mut resp: Response| {
                let protos = req
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if protos.contains("rivet_encoding.bare") {
                    encoding = Encoding::Bare;
                }
                resp.headers_mut()
                    .insert("sec-websocket-protocol", "rivet".parse().expect("static"));
                Ok(resp)
            };
            let Ok(mut ws) =
                tokio_tungstenite::accept_hdr_async_with_config(stream, cb, Some(config)).await
            else {
                return;
            };
            let frame = |m: &ToClient| {
                let b = codec::encode_to_client(m, encoding, 4, Dialect::Compat);
                match encoding {
                    Encoding::Json => {
                        Message::Text(String::from_utf8(b).unwrap_or_default().into())
                    }
                    _ => Message::Binary(b.into()),
                }
            };
            let init = ToClient::Init {
                actor_id: ActorId::new("echo"),
                connection_id: ConnId::new("c"),
                connection_token: None,
            };
            if ws.send(frame(&init)).await.is_err() {
                return;
            }
            while let Some(Ok(msg)) = ws.next().await {
                let data: Bytes = match msg {
                    Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if let Ok((ToServer::ActionRequest { id, .. }, _)) =
                    codec::decode_to_server(&data, encoding, Dialect::Compat)
                {
                    let reply = ToClient::ActionResponse {
                        id,
                        output: Value::Int(1),
                    };
                    if ws.send(frame(&reply)).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
}

/// Fsync'd SQLite commits per second (WAL, `synchronous=FULL`, one UPDATE per transaction)
/// in `dir`, for `secs`.
pub(crate) fn sqlite_commits(dir: &std::path::Path, secs: f64) -> anyhow::Result<f64> {
    let path = dir.join("bench-fsync.db");
    let _ = std::fs::remove_file(&path);
    let db = rusqlite::Connection::open(&path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(
        "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB); INSERT INTO t VALUES (1, x'00');",
    )?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while Instant::now() < end {
        db.execute(
            "UPDATE t SET v = ?1 WHERE k = 1",
            [n.to_le_bytes().to_vec()],
        )?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("bench-fsync.db{suffix}")));
    }
    Ok(rate)
}
