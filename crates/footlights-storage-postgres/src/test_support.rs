//! A PostgreSQL server for tests and benchmarks (feature `test-support`), started from
//! Debian's server binaries by the tests themselves.
//!
//! ```no_run
//! # async fn example() -> footlights_storage::Result<()> {
//! use footlights_storage_postgres::PostgresDriver;
//! use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};
//!
//! let server = TestPostgres::shared_async().await; // one per test binary, started once
//! let schema = TestSchema::new(server);            // one per test: tests run in parallel
//! let driver = PostgresDriver::builder(server.url()).schema(schema.name()).connect().await?;
//! # Ok(()) }
//! ```
//!
//! - **Where the server comes from.** If `FOOTLIGHTS_TEST_POSTGRES_URL` is set, the tests use
//!   that server (each test in a schema of its own, dropped at its end). Otherwise
//!   [`TestPostgres::start`] runs `initdb` into a new temporary directory and `postgres` on a
//!   free port of 127.0.0.1 (TCP only, trust authentication, user `postgres`), from the
//!   newest `/usr/lib/postgresql/<version>/bin`, or `$FOOTLIGHTS_POSTGRES_BIN`, or the `PATH`.
//!   With no binaries, it fails with a message saying to install them (`apt-get install
//!   postgresql`): a test never skips silently.
//! - **Not as root.** `initdb` and `postgres` refuse to run as root; as root they run as the
//!   `postgres` system user (`runuser -u postgres --`), in a directory given to that user.
//! - **Started, then stopped.** Start-up waits (at most a minute) until the server answers
//!   `pg_isready`, and fails with the server's log if it exits first; a taken port is tried
//!   again with another. Dropping a [`TestPostgres`] stops its server (fast shutdown, by its
//!   process id; killed if it has not stopped within 30 s) and removes its directory. The
//!   server is started under a small shell that stops it as soon as its standard input
//!   closes, which the kernel does when the test process ends in any way (a panic, `exit`,
//!   `SIGKILL`): the [`shared`](TestPostgres::shared) server, which is never dropped, does not
//!   outlive the tests either.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming an existing server to use instead of starting one.
pub const URL_VAR: &str = "FOOTLIGHTS_TEST_POSTGRES_URL";

/// The environment variable naming a directory of server binaries to use.
pub const BIN_VAR: &str = "FOOTLIGHTS_POSTGRES_BIN";

/// How long start-up waits for the server to accept connections.
const READY_WAIT: Duration = Duration::from_secs(60);

/// How long a stop waits for the server to exit before killing it.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Why a test server could not be set up. Its message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, SetupError> {
    Err(SetupError(message.into()))
}

/// A PostgreSQL server for tests: one started here (stopped when dropped), or the one named
/// by `FOOTLIGHTS_TEST_POSTGRES_URL`.
#[derive(Debug)]
pub struct TestPostgres {
    url: String,
    /// `None` for a server given by URL.
    owned: Option<Owned>,
}

/// A server this process started.
#[derive(Debug)]
struct Owned {
    /// Holds `data/` (owned by the server's user) and `server.log`.
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `runuser -u postgres --` when running as root, else nothing.
    as_user: Vec<String>,
    port: u16,
    /// The running server, `None` while stopped.
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    /// The shell that started the server and stops it when its standard input closes.
    shell: Child,
    /// Its standard input: dropping it stops the server.
    stdin: Option<ChildStdin>,
    /// The server's own process id.
    pid: u32,
}

impl TestPostgres {
    /// The server of this test binary: the one `FOOTLIGHTS_TEST_POSTGRES_URL` names, or one
    /// started at the first call and stopped when the process ends. Blocks while it starts.
    ///
    /// # Panics
    ///
    /// If no server can be had; the message says how to install PostgreSQL.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
        let server = SHARED.get_or_init(|| TestPostgres::from_env_or_start().map_err(|e| e.0));
        match server {
            Ok(server) => server,
            Err(message) => panic!("no PostgreSQL for the tests: {message}"),
        }
    }

    /// [`shared`](Self::shared) for async callers: starts it on a blocking thread.
    ///
    /// # Panics
    ///
    /// As [`shared`](Self::shared).
    pub async fn shared_async() -> &'static TestPostgres {
        match tokio::task::spawn_blocking(TestPostgres::shared).await {
            Ok(server) => server,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// The server `FOOTLIGHTS_TEST_POSTGRES_URL` names if it is set, else a new one
    /// ([`start`](Self::start)).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn from_env_or_start() -> Result<TestPostgres, SetupError> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Ok(TestPostgres { url, owned: None }),
            _ => TestPostgres::start(),
        }
    }

    /// Starts a new server in a temporary directory, on a free port of 127.0.0.1. Blocks until
    /// it accepts connections.
    ///
    /// # Errors
    ///
    /// No server binaries (the message says how to install them), no user to run them as,
    /// `initdb` failing, or a server that exits or does not answer within a minute (with its
    /// log).
    pub fn start() -> Result<TestPostgres, SetupError> {
        let bin = find_bin()?;
        let as_user = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix("footlights-pg-")
            .tempdir()
            .or_else(|e| fail(format!("creating a temporary directory: {e}")))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)
            .or_else(|e| fail(format!("creating {}: {e}", data.display())))?;
        if !as_user.is_empty() {
            give_to_postgres(&data)?;
        }
        let mut initdb = command(&as_user, &bin.join("initdb"));
        initdb.arg("-D").arg(&data);
        initdb.args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let out = initdb
            .output()
            .or_else(|e| fail(format!("running initdb: {e}")))?;
        if !out.status.success() {
            return fail(format!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut owned = Owned {
            dir,
            bin,
            as_user,
            port: 0,
            running: None,
        };
        // A free port may be taken between finding it and the server binding it: try others.
        let mut last = None;
        for _ in 0..5 {
            owned.port = free_port()?;
            match owned.run() {
                Ok(()) => {
                    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", owned.port);
                    return Ok(TestPostgres {
                        url,
                        owned: Some(owned),
                    });
                }
                Err(e) if e.0.contains("could not bind") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| SetupError("no free port".to_owned())))
    }

    /// The URL to connect to, as `postgres://user@host:port/database`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops a server this process started (fast shutdown), keeping its data; connections to
    /// it fail until [`restart`](Self::restart). Does nothing to a server given by URL.
    pub fn stop(&mut self) {
        if let Some(owned) = &mut self.owned {
            owned.stop(true);
        }
    }

    /// Starts a stopped server again, on the same port and data.
    ///
    /// # Errors
    ///
    /// A server given by URL, or one that does not come back (with its log).
    pub fn restart(&mut self) -> Result<(), SetupError> {
        match &mut self.owned {
            Some(owned) if owned.running.is_none() => owned.run(),
            Some(_) => Ok(()),
            None => fail("the server was given by URL: it is not this process's to restart"),
        }
    }
}

impl Owned {
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server under the stopping shell and waits until it is ready.
    fn run(&mut self) -> Result<(), SetupError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .or_else(|e| fail(format!("opening the server log: {e}")))?;
        // The shell prints the server's pid, then waits for a line or the end of its input (a
        // stop, or the end of this process), then stops the server and waits for it. Unless
        // the line was `keep` (a stop before a restart), it then removes the directory: the
        // shared server is never dropped, so nothing else would.
        let script = "dir=$1; shift; \"$@\" & pid=$!; echo \"$pid\"; read -r keep; \
                      kill -INT \"$pid\" 2>/dev/null; wait \"$pid\"; \
                      [ \"$keep\" = keep ] || rm -rf \"$dir\"";
        let mut shell = command(&self.as_user, Path::new("sh"));
        shell.args(["-c", script, "sh"]).arg(self.dir.path());
        shell.arg(self.bin.join("postgres"));
        shell.arg("-D").arg(self.dir.path().join("data"));
        shell.args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k", ""]);
        shell.args([
            "-c",
            "max_connections=300",
            "-c",
            "log_min_messages=warning",
        ]);
        shell
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = shell
            .spawn()
            .or_else(|e| fail(format!("starting postgres: {e}")))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .or_else(|e| fail(format!("reading the server's pid: {e}")))?;
        }
        let Ok(pid) = line.trim().parse::<u32>() else {
            let _ = child.kill();
            return fail(format!("the server did not start: {}", self.log()));
        };
        self.running = Some(Running {
            shell: child,
            stdin,
            pid,
        });
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), SetupError> {
        let started = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-p"])
                .arg(self.port.to_string())
                .status()
                .or_else(|e| fail(format!("running pg_isready: {e}")))?;
            if ready.success() {
                return Ok(());
            }
            let exited = self
                .running
                .as_mut()
                .is_none_or(|r| !Path::new(&format!("/proc/{}", r.pid)).exists());
            if exited || started.elapsed() > READY_WAIT {
                self.stop(true);
                let why = if exited {
                    "exited"
                } else {
                    "did not answer within a minute"
                };
                return fail(format!("the test server {why}; its log: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Closes the shell's input (it stops the server), signals the server by pid as well,
    /// and waits for both; kills the server if it does not stop in time. With `keep`, tells
    /// the shell to leave the data for a restart.
    fn stop(&mut self, keep: bool) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        if let Some(mut stdin) = running.stdin.take() {
            if keep {
                let _ = stdin.write_all(b"keep\n");
            }
            drop(stdin);
        }
        let pid = running.pid.to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < STOP_WAIT {
            if let Ok(Some(_)) = running.shell.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        let _ = running.shell.kill();
        let _ = running.shell.wait();
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// A command, run as the server's user if `as_user` says so.
fn command(as_user: &[String], program: &Path) -> Command {
    match as_user.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// The directory of the server binaries: `$FOOTLIGHTS_POSTGRES_BIN`, the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout), or where `initdb` is on the `PATH`.
fn find_bin() -> Result<PathBuf, SetupError> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os(BIN_VAR) {
        let dir = PathBuf::from(dir);
        return if has_initdb(&dir) {
            Ok(dir)
        } else {
            fail(format!(
                "{BIN_VAR}={} holds no initdb and postgres",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).find(|dir| has_initdb(dir)))
        .unwrap_or_default();
    match on_path {
        Some(dir) => Ok(dir),
        None => fail(format!(
            "no PostgreSQL server binaries found (initdb and postgres, looked in \
             /usr/lib/postgresql/*/bin, ${BIN_VAR} and the PATH). Install them with \
             `apt-get install postgresql` (Debian, Ubuntu), or set {URL_VAR} to the URL of a \
             server the tests may use (postgres://user@host:port/database)"
        )),
    }
}

/// The prefix that runs a command as a user the server accepts: nothing unless this process
/// is root, then `runuser -u postgres --`.
fn run_as() -> Result<Vec<String>, SetupError> {
    if id(&["-u"])? != "0" {
        return Ok(Vec::new());
    }
    if id(&["-u", "postgres"]).is_err() {
        return fail(
            "running as root, and there is no `postgres` user to run the test server as \
             (initdb refuses root): install Debian's `postgresql` package, which creates it",
        );
    }
    Ok(["runuser", "-u", "postgres", "--"]
        .map(String::from)
        .to_vec())
}

fn id(args: &[&str]) -> Result<String, SetupError> {
    let out = Command::new("id")
        .args(args)
        .output()
        .or_else(|e| fail(format!("running id: {e}")))?;
    if !out.status.success() {
        return fail(format!("id {args:?} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Gives `data` and the directory above it to the `postgres` user.
fn give_to_postgres(data: &Path) -> Result<(), SetupError> {
    let number = |args: &[&str]| -> Result<u32, SetupError> {
        id(args)?
            .parse()
            .or_else(|_| fail(format!("id {args:?} printed no number")))
    };
    let (uid, gid) = (number(&["-u", "postgres"])?, number(&["-g", "postgres"])?);
    for dir in [data.parent(), Some(data)].into_iter().flatten() {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .or_else(|e| fail(format!("giving {} to postgres: {e}", dir.display())))?;
    }
    Ok(())
}

fn free_port() -> Result<u16, SetupError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").or_else(|e| fail(format!("finding a free port: {e}")))?;
    let port = listener
        .local_addr()
        .or_else(|e| fail(format!("finding a free port: {e}")))?
        .port();
    Ok(port)
}

/// A schema of its own for one test, so that tests share a server and run in parallel.
/// Dropping it drops the schema and everything in it.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A new schema name on `server`, unique in this process and across processes. The
    /// schema itself is created by the first driver that connects with it.
    pub fn new(server: &TestPostgres) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("footlights_test_{}_{n}", std::process::id());
        TestSchema {
            url: server.url().to_owned(),
            name,
        }
    }

    /// The schema's name, for [`PostgresDriverBuilder::schema`](crate::PostgresDriverBuilder::schema).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain connection to the server with `search_path` set to the schema, for checks
    /// that go around the driver.
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", self.name))
            .await
            .unwrap_or_else(|e| panic!("setting the search path: {e}"));
        client
    }
}

impl Drop for TestSchema {
    /// Drops the schema from a thread of its own (with its own runtime), so that it works
    /// inside or outside a Tokio runtime. Failing to drop it is not a test failure.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = client.batch_execute(&sql).await;
                }
            });
        });
        let _ = dropping.join();
    }
}
