//! `footlights new`: writes a crate to start a project of your own from.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// What `footlights new` was asked for: its command-line options.
///
/// The field comments are the help text of `footlights new --help`: plain words, no markup.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").args(["footlights_path", "footlights_git"])))]
pub struct NewOptions {
    /// The crate's name: letters, digits, - and _, starting with a letter.
    pub name: String,
    /// Where to write it (default: a directory named NAME in the current one). It must not
    /// exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Takes footlights from this checkout of the repository (or its crates/footlights
    /// directory) as a path dependency. The default is the checkout this program was built
    /// from, when it is still there, and otherwise the published crate.
    #[arg(long, value_name = "DIR")]
    pub footlights_path: Option<PathBuf>,
    /// Takes footlights from this git repository instead (a git dependency).
    #[arg(long, value_name = "URL")]
    pub footlights_git: Option<String>,
}

/// How the new crate depends on `footlights`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path dependency on the `footlights` crate's directory.
    Path(PathBuf),
    /// A git dependency on the repository at this URL.
    Git(String),
    /// The published crate, by version requirement.
    Registry(&'static str),
}

impl Source {
    /// The `footlights = …` line of the new crate's `Cargo.toml`.
    fn dependency_line(&self) -> String {
        match self {
            Source::Path(path) => format!("footlights = {{ path = {} }}", toml_string(path)),
            Source::Git(url) => format!("footlights = {{ git = {} }}", toml_string(url)),
            Source::Registry(version) => format!("footlights = \"{version}\""),
        }
    }

    /// Where the dependency comes from, for the summary line.
    fn describe(&self) -> String {
        match self {
            Source::Path(path) => format!("from {}", path.display()),
            Source::Git(url) => format!("from git {url}"),
            Source::Registry(version) => format!("version {version} from crates.io"),
        }
    }
}

/// A TOML basic string holding `text`, with `\` and `"` escaped.
fn toml_string(text: impl AsRef<std::ffi::OsStr>) -> String {
    let text = text.as_ref().to_string_lossy();
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The version requirement written when no checkout is at hand.
const PUBLISHED: &str = "0.1";

/// Where the new crate takes `footlights` from, given the options.
///
/// # Errors
/// When `--footlights-path` names a directory without the `footlights` crate.
pub fn source(options: &NewOptions) -> anyhow::Result<Source> {
    if let Some(url) = &options.footlights_git {
        return Ok(Source::Git(url.clone()));
    }
    if let Some(path) = &options.footlights_path {
        return facade_dir(path).map(Source::Path).with_context(|| {
            format!(
                "{} holds neither crates/footlights nor the footlights crate itself",
                path.display()
            )
        });
    }
    // The checkout this binary was built from: its crates/ directory holds the facade beside
    // this crate. Installed from a registry, the sibling directory does not exist.
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../footlights");
    Ok(match facade_dir(&built_from) {
        Some(dir) => Source::Path(dir),
        None => Source::Registry(PUBLISHED),
    })
}

/// The `footlights` crate's directory: `dir` itself or `dir/crates/footlights`, made absolute.
fn facade_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("crates").join("footlights")]
        .into_iter()
        .find(|candidate| is_facade(&candidate.join("Cargo.toml")))
        .and_then(|found| std::fs::canonicalize(found).ok())
}

/// Whether `manifest` is the `footlights` crate's manifest: `name = "footlights"` in its
/// `[package]` table (a `[[bin]]` of that name is another crate's).
fn is_facade(manifest: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return false;
    };
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && line.replace(' ', "") == "name=\"footlights\"" {
            return true;
        }
    }
    false
}

/// Names a new crate may not take: they would clash with its dependencies.
const TAKEN: &[&str] = &[
    "footlights",
    "serde",
    "tokio",
    "test",
    "core",
    "std",
    "alloc",
];

/// Checks a crate name: ASCII letters, digits, `-` and `_`, starting with a letter, at most 64
/// characters, and not the name of one of its dependencies.
///
/// # Errors
/// Says what is wrong with the name.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let Some(first) = name.chars().next() else {
        anyhow::bail!("the crate name is empty");
    };
    anyhow::ensure!(
        first.is_ascii_alphabetic(),
        "the crate name `{name}` must start with a letter"
    );
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        anyhow::bail!(
            "the crate name `{name}` may hold only letters, digits, `-` and `_`, not `{bad}`"
        );
    }
    anyhow::ensure!(
        name.len() <= 64,
        "the crate name `{name}` is longer than 64 characters"
    );
    let ident = name.replace('-', "_");
    anyhow::ensure!(
        !TAKEN.contains(&ident.as_str()),
        "the crate name `{name}` is taken by a dependency of the new crate; choose another"
    );
    Ok(())
}

/// Writes the new crate and returns its directory.
///
/// # Errors
/// A bad name, a target directory that exists and is not empty, or a file that cannot be
/// written.
pub fn generate(options: &NewOptions) -> anyhow::Result<PathBuf> {
    check_name(&options.name)?;
    let dir = options
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&options.name));
    if dir.exists() {
        let mut entries = std::fs::read_dir(&dir)
            .with_context(|| format!("{} exists and cannot be read", dir.display()))?;
        anyhow::ensure!(
            entries.next().is_none(),
            "{} exists and is not empty; choose another --path",
            dir.display()
        );
    }
    let source = source(options)?;
    for (file, text) in files(&options.name, &source) {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote the crate {} in {} (footlights {})",
        options.name,
        dir.display(),
        source.describe()
    );
    println!(
        "next: cd {} && cargo test && cargo run",
        shell_word(&dir.to_string_lossy())
    );
    Ok(dir)
}

/// `word`, quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The new crate's files: relative path and content.
pub fn files(name: &str, source: &Source) -> Vec<(&'static str, String)> {
    let ident = name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{ident}}", &ident)
            .replace("{{footlights}}", &source.dependency_line())
    };
    vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("src/main.rs", fill(MAIN_RS)),
        ("tests/counter.rs", fill(TEST_RS)),
        ("README.md", fill(README_MD)),
        (".gitignore", fill(GITIGNORE)),
    ]
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
# Actors, their macros, the embedded SQLite store and the network server.
{{footlights}}
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

# A workspace of its own, so the crate builds wherever it is put. Remove this table to make it a
# member of a larger workspace.
[workspace]
"#;

const LIB_RS: &str = r#"//! The actors of {{name}}.

use footlights::prelude::*;

/// A counter. The struct is the actor's state: it is saved after every action that changes it.
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

/// Sent to every connection that listens for `newCount`, after each change.
#[derive(Clone, Serialize, Deserialize, Event)]
pub struct NewCount(pub i64);

#[footlights::actor]
impl Counter {
    /// Adds `amount` to the count and returns the new count (`increment` on the wire).
    #[action]
    fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
        self.count += amount;
        ctx.broadcast(NewCount(self.count));
        self.count
    }

    /// The current count (`getCount` on the wire).
    #[action]
    fn get_count(&self) -> i64 {
        self.count
    }
}

/// Every actor type of this crate: the server and the tests start the same set.
pub fn registry() -> footlights::RegistryBuilder {
    Registry::builder().actor::<Counter>()
}
"#;

const MAIN_RS: &str = r#"//! Serves the actors over HTTP, WebSocket and SSE, with their state in a SQLite file.
//!
//! `FOOTLIGHTS_ADDR` sets the address (default `127.0.0.1:6420`; port 0 picks a free one) and
//! `FOOTLIGHTS_DB` the state file (default `{{name}}.db`). Prints `listening on http://…` once
//! ready; stops on Ctrl-C or SIGTERM after saving every actor.

use footlights::storage::SqliteDriver;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("FOOTLIGHTS_ADDR").unwrap_or_else(|_| "127.0.0.1:6420".to_owned());
    let db = std::env::var("FOOTLIGHTS_DB").unwrap_or_else(|_| "{{name}}.db".to_owned());
    let registry = {{ident}}::registry()
        .driver(SqliteDriver::open(&db).await?)
        .start()
        .await?;
    footlights::serve(registry, addr).await?;
    Ok(())
}
"#;

const TEST_RS: &str = r#"//! The counter, called in process: no network, state in memory.

use {{ident}}::{Counter, CounterActions};

#[tokio::test]
async fn increment_adds_and_get_count_reads() -> Result<(), Box<dyn std::error::Error>> {
    let registry = {{ident}}::registry().start().await?;
    let counter = registry.client().get_or_create::<Counter>(["test"]);
    assert_eq!(counter.increment(2).await?, 2);
    assert_eq!(counter.increment(3).await?, 5);
    assert_eq!(counter.get_count().await?, 5);

    // Another key is another actor, with its own state.
    let other = registry.client().get_or_create::<Counter>(["other"]);
    assert_eq!(other.get_count().await?, 0);
    registry.shutdown().await;
    Ok(())
}
"#;

const README_MD: &str = r#"# {{name}}

Actors served by Footlights: `src/lib.rs` defines them,
`src/main.rs` serves them, `tests/` calls them.

```bash
cargo test                                   # calls the counter in process
cargo run                                    # serves it on http://127.0.0.1:6420
FOOTLIGHTS_ADDR=127.0.0.1:0 cargo run        # on a free port (the printed line shows which)
```

State is kept in `{{name}}.db` (set `FOOTLIGHTS_DB` for another file). Ctrl-C or SIGTERM
stops the server after saving every actor.

Call an action over HTTP once it serves:

```bash
curl -X POST -H 'x-rivet-encoding: json' -H 'content-type: application/json' -d '{"args":[5]}' \
  'http://127.0.0.1:6420/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=room-1&rvt-crash-policy=sleep'
```

Or from JavaScript with the official client (`npm install rivetkit`):

```js
import { createClient } from "rivetkit/client";
const client = createClient("http://127.0.0.1:6420");
const conn = client.counter.getOrCreate(["room-1"]).connect();
conn.on("newCount", (n) => console.log("count is now", n));
await conn.increment(1);
```

Add actors to `src/lib.rs` and to `registry()` there. The Footlights guide covers state,
actions, events, connections and configuration: `cargo doc -p footlights --open`, then its
`guide` module.
"#;

const GITIGNORE: &str = "/target\n*.db\n*.db-*\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["app", "my-app", "my_app2", "A1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("1app", "start with a letter"),
            ("my app", "not ` `"),
            ("app/x", "not `/`"),
            ("footlights", "taken"),
            ("tokio", "taken"),
        ] {
            let error = check_name(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn the_dependency_line_quotes_what_it_writes() {
        assert_eq!(
            Source::Path(PathBuf::from(r#"/a "b"\c"#)).dependency_line(),
            r#"footlights = { path = "/a \"b\"\\c" }"#
        );
        assert_eq!(
            Source::Git("https://host/repo.git".into()).dependency_line(),
            r#"footlights = { git = "https://host/repo.git" }"#
        );
        assert_eq!(
            Source::Registry("0.1").dependency_line(),
            r#"footlights = "0.1""#
        );
    }

    #[test]
    fn placeholders_are_all_filled() {
        for (file, text) in files("my-app", &Source::Registry("0.1")) {
            assert!(!text.contains("{{"), "{file} keeps a placeholder");
        }
        let files = files("my-app", &Source::Registry("0.1"));
        let main = &files.iter().find(|(f, _)| *f == "src/main.rs").unwrap().1;
        assert!(main.contains("my_app::registry()"), "{main}");
        let manifest = &files.iter().find(|(f, _)| *f == "Cargo.toml").unwrap().1;
        assert!(manifest.contains("name = \"my-app\""), "{manifest}");
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("./my-app"), "./my-app");
        assert_eq!(shell_word("my app"), "'my app'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_checkout_is_found_from_its_root_or_the_crate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let from_root = facade_dir(&root).expect("found from the root");
        let from_crate = facade_dir(&root.join("crates/footlights")).expect("found from the crate");
        assert_eq!(from_root, from_crate);
        assert!(facade_dir(Path::new(env!("CARGO_MANIFEST_DIR"))).is_none());
    }
}
