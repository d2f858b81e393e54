//! The usual "stop when asked" future for a server binary.

use std::future::Future;

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM: pass it to [`Server::serve`] as the
/// shutdown future.
///
/// The signal handlers are installed when this is called, not when the future is first polled,
/// so a signal that arrives while the server is still starting is not lost. Call it from the
/// binary: a library should leave the process's signals to its host.
///
/// ```no_run
/// # async fn run(server: footlights_server::Server) -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:6420").await?;
/// server.serve(listener, footlights_server::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
///
/// [`Server::serve`]: crate::Server::serve
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        async move {
            match handlers {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_on_sigterm_sent_after_the_call() {
        let stopped = shutdown_signal();
        // The handler is in place: SIGTERM is caught instead of ending the test process.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(30), stopped)
            .await
            .expect("the signal future resolves");
    }
}
