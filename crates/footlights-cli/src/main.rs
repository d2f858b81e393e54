//! The `footlights` binary. See the [`footlights_cli`] crate docs for what each command does.

use std::io::Write as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use footlights_cli::actors::ActorsOptions;
use footlights_cli::new::NewOptions;
use footlights_cli::{Bound, Origin, ServeOptions, Telemetry};

// The server allocates many small, short-lived buffers per message (frames, decoded values,
// futures); mimalloc serves them with less CPU than the system allocator (feature `mimalloc`,
// on by default).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stateful actors with realtime connections, speaking the RivetKit client protocol.
#[derive(Debug, Parser)]
#[command(name = "footlights", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // The comments below are the commands' help text: plain words, no markup.
    /// Serves the built-in demo actors (counter, chatRoom, secureRoom, protectedActor,
    /// jobQueue) until Ctrl-C or SIGTERM; prints "listening on http://HOST:PORT" once ready.
    /// To serve actors of your own, write a crate (footlights new) and call footlights::serve
    /// from its main.
    Serve(Box<ServeOptions>),
    /// Writes a new crate to start from: one actor, a server main (footlights::serve), a test
    /// and a README. Then: cd NAME && cargo test && cargo run.
    New(NewOptions),
    /// Lists, reads, calls and deletes the actors of a running server (its inspector API).
    /// Exit status: 0 done, 1 the server answered with an error, 2 bad command line, 3 server
    /// unreachable, 4 token missing or wrong, 5 no such actor.
    Actors(ActorsOptions),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let options = match cli.command {
        Command::New(options) => {
            footlights_cli::new::generate(&options)?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Actors(options) => return Ok(footlights_cli::actors::run(options)),
        Command::Serve(options) => *options,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let telemetry = Telemetry::install(&options, runtime.handle())?;
    let served = runtime.block_on(serve(options));
    // The runtime still runs: the last traces go out on it.
    telemetry.finish();
    served?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // Handlers go in before the ready line: a signal sent right after it must stop us cleanly.
    let mut signals = signal::Signals::install()?;
    let bound = Bound::bind(&options).await?;
    if bound.origin() == Origin::Handover {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "taking over http://{} once the server serving it stops",
            bound.local_addr()?
        )?;
        stdout.flush()?;
    }
    let listening = bound.open(&options).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{}", listening.local_addr())?;
    if let (Some(peers), Some(node)) = (listening.peer_addr(), listening.node()) {
        writeln!(
            stdout,
            "cluster node {node}, peer link listening on {peers}"
        )?;
    }
    stdout.flush()?;
    drop(stdout);
    // The first signal starts the graceful stop; a second one ends the process at once.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            "stopping; send another signal to exit at once"
        );
        let _ = stop.send(());
        let name = signals.next().await;
        tracing::warn!(
            signal = name,
            "second signal: exiting without a graceful stop"
        );
        std::process::exit(130);
    });
    listening
        .serve(async move {
            let _ = stopped.await;
        })
        .await
}

#[cfg(unix)]
mod signal {
    use tokio::signal::unix::{Signal, SignalKind, signal};

    /// SIGINT (Ctrl-C) and SIGTERM, listened to from the moment they are installed.
    pub(crate) struct Signals {
        interrupt: Signal,
        terminate: Signal,
    }

    impl Signals {
        pub(crate) fn install() -> std::io::Result<Signals> {
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }

        /// Waits for the next signal and names it.
        pub(crate) async fn next(&mut self) -> &'static str {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
    }
}

#[cfg(not(unix))]
mod signal {
    /// Ctrl-C, the only stop signal outside Unix.
    pub(crate) struct Signals;

    impl Signals {
        pub(crate) fn install() -> std::io::Result<Signals> {
            Ok(Signals)
        }

        /// Waits for the next Ctrl-C.
        pub(crate) async fn next(&mut self) -> &'static str {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
