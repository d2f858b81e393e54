//! `footlights actors …`: look at and act on the actors of a running server, through its
//! inspector API (`/inspector/api`, see `footlights_server`'s inspector docs).
//!
//! ```text
//! footlights actors [--url URL] [--token TOKEN] list [--name NAME] [--prefix KEY] [--json]
//! footlights actors [--url URL] [--token TOKEN] get NAME KEY
//! footlights actors [--url URL] [--token TOKEN] call NAME KEY ACTION [ARG_JSON ...]
//! footlights actors [--url URL] [--token TOKEN] delete NAME KEY
//! ```
//!
//! `--url` defaults to `FOOTLIGHTS_URL`, then `http://127.0.0.1:6420`; `--token` to
//! `FOOTLIGHTS_TOKEN`. Keys are in their serialized form: parts joined with `/` (`a/b` is the
//! key `["a", "b"]`, `/` the empty key).
//!
//! What each prints on standard output:
//!
//! - `list`: one actor per line, `NAME<TAB>KEY<TAB>ID<TAB>awake|asleep`, every page of every
//!   type (or of `--name`); with `--json`, one JSON object per line as the API gives it.
//! - `get`: the actor's state as JSON (pretty-printed).
//! - `call`: the action's output as JSON. Each `ARG_JSON` is one argument, as JSON (`5`,
//!   `'"text"'`, `'{"a":1}'`); a stateless call, as an HTTP action makes one.
//! - `delete`: nothing; the actor is destroyed (its destroy hook runs, its data is deleted).
//!
//! # Exit status
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the server answered with an error (its code on standard error) |
//! | 2 | bad command line (wrong arguments, an argument that is not JSON) |
//! | 3 | the server could not be reached, or did not answer as the inspector API does |
//! | 4 | refused: no token or a wrong one (`auth.unauthorized`, `auth.forbidden`) |
//! | 5 | no such actor or actor type (`actor.not_found`) |
//!
//! Errors go to standard error as one line, `error: GROUP.CODE: MESSAGE`, so scripts can
//! match the code.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::serve::Secret;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The options every `actors` command takes, and the command.
#[derive(Debug, Clone, clap::Args)]
pub struct ActorsOptions {
    /// The server's URL.
    #[arg(
        long,
        global = true,
        env = "FOOTLIGHTS_URL",
        default_value = "http://127.0.0.1:6420"
    )]
    pub url: String,
    /// The server's token (its --token), sent as Authorization: Bearer. Read from the
    /// environment variable FOOTLIGHTS_TOKEN when not given; never printed.
    #[arg(long, global = true, env = "FOOTLIGHTS_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// What to do.
    #[command(subcommand)]
    pub command: ActorsCommand,
}

/// One `actors` command.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ActorsCommand {
    /// Lists actors, one per line: name, key, id and awake or asleep, tab-separated.
    List {
        /// Only actors of this type.
        #[arg(long)]
        name: Option<String>,
        /// Only actors whose key starts with these whole parts (a/b), with --name.
        #[arg(long, requires = "name")]
        prefix: Option<String>,
        /// One JSON object per line instead.
        #[arg(long)]
        json: bool,
    },
    /// Prints an actor's state as JSON.
    Get {
        /// The actor type.
        name: String,
        /// The key, parts joined with a slash.
        key: String,
    },
    /// Calls an action and prints its output as JSON. Each argument is one JSON value.
    Call {
        /// The actor type.
        name: String,
        /// The key, parts joined with a slash.
        key: String,
        /// The action, as clients name it (incrementBy).
        action: String,
        /// The arguments, one JSON value each.
        args: Vec<String>,
    },
    /// Destroys an actor: its destroy hook runs and its data is deleted.
    Delete {
        /// The actor type.
        name: String,
        /// The key, parts joined with a slash.
        key: String,
    },
}

/// Why a command failed, with its exit status.
#[derive(Debug)]
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            status: 2,
            message: message.into(),
        }
    }

    fn unreachable(message: impl Into<String>) -> Self {
        Failure {
            status: 3,
            message: message.into(),
        }
    }

    /// A coded error from the server's JSON error body.
    fn coded(body: &Value) -> Self {
        let group = body["group"].as_str().unwrap_or("unknown");
        let code = body["code"].as_str().unwrap_or("unknown");
        let message = body["message"].as_str().unwrap_or("");
        let status = match (group, code) {
            ("auth", "unauthorized" | "forbidden") => 4,
            (_, "not_found") => 5,
            _ => 1,
        };
        Failure {
            status,
            message: format!("{group}.{code}: {message}"),
        }
    }
}

/// Runs one `actors` command; prints its result on standard output, or its error on standard
/// error, and returns the exit status (see the [module docs](self)).
pub fn run(options: ActorsOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

/// The inspector API of one server.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(url: &str, token: Option<Secret>) -> Result<Api, Failure> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Failure::unreachable(format!("cannot make an HTTP client: {e}")))?;
        Ok(Api {
            http,
            base: format!("{}/inspector/api", url.trim_end_matches('/')),
            token: token.map(|t| t.0),
        })
    }

    /// Sends a request and reads the JSON answer; an error body becomes a coded failure.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| Failure::unreachable(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::unreachable(format!("the answer broke off: {e}")))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| {
            Failure::unreachable(format!(
                "{} answered HTTP {status} without JSON: is it a Footlights server?",
                self.base
            ))
        })?;
        if status.is_success() {
            Ok(body)
        } else if body["code"].is_string() {
            Err(Failure::coded(&body))
        } else {
            Err(Failure::unreachable(format!(
                "{} answered HTTP {status}",
                self.base
            )))
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(request).await
    }

    /// The id of actor `name` with `key`.
    async fn find(&self, name: &str, key: &str) -> Result<String, Failure> {
        let found = self.get("/actors", &[("name", name), ("key", key)]).await?;
        found["actors"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure {
                status: 5,
                message: format!("actor.not_found: no {name} actor with the key {key}"),
            })
    }
}

/// An actor id as one path segment.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure {
            status: 1,
            message: format!("cannot write the output: {e}"),
        })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

async fn execute(options: ActorsOptions) -> Result<(), Failure> {
    let api = Api::new(&options.url, options.token)?;
    match options.command {
        ActorsCommand::List { name, prefix, json } => {
            let names: Vec<String> = match name {
                Some(name) => vec![name],
                None => {
                    let all = api.get("/actors", &[]).await?;
                    all["names"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                }
            };
            for name in names {
                let mut cursor: Option<String> = None;
                loop {
                    let mut query = vec![("name", name.as_str()), ("limit", "1000")];
                    if let Some(prefix) = &prefix {
                        query.push(("prefix", prefix));
                    }
                    if let Some(cursor) = &cursor {
                        query.push(("cursor", cursor));
                    }
                    let page = api.get("/actors", &query).await?;
                    for actor in page["actors"].as_array().into_iter().flatten() {
                        if json {
                            print(&actor.to_string())?;
                        } else {
                            let text = |field: &str| actor[field].as_str().unwrap_or("");
                            let awake = if actor["awake"] == json!(true) {
                                "awake"
                            } else {
                                "asleep"
                            };
                            print(&format!(
                                "{}\t{}\t{}\t{awake}",
                                text("name"),
                                text("key"),
                                text("id")
                            ))?;
                        }
                    }
                    match page["cursor"].as_str() {
                        Some(next) => cursor = Some(next.to_owned()),
                        None => break,
                    }
                }
            }
            Ok(())
        }
        ActorsCommand::Get { name, key } => {
            let id = api.find(&name, &key).await?;
            let detail = api
                .get(&format!("/actors/{}", segment(&id)), &[("kv_limit", "1")])
                .await?;
            print(&pretty(&detail["state"]))
        }
        ActorsCommand::Call {
            name,
            key,
            action,
            args,
        } => {
            let args = args
                .iter()
                .enumerate()
                .map(|(i, arg)| {
                    serde_json::from_str::<Value>(arg).map_err(|e| {
                        Failure::usage(format!("argument {} is not JSON ({e}): {arg}", i + 1))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let id = api.find(&name, &key).await?;
            let url = format!(
                "{}/actors/{}/actions/{}",
                api.base,
                segment(&id),
                segment(&action)
            );
            let answer = api
                .send(api.http.post(url).json(&json!({ "args": args })))
                .await?;
            print(&pretty(&answer["output"]))
        }
        ActorsCommand::Delete { name, key } => {
            let id = api.find(&name, &key).await?;
            let url = format!("{}/actors/{}", api.base, segment(&id));
            api.send(api.http.delete(url)).await.map(drop)
        }
    }
}
