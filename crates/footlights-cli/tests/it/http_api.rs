//! `docs/http-api.md` runs: every `sh` example that calls `curl` is run, in the order of the
//! page, against one fresh `footlights serve`, and its output is compared with the `text`
//! block that follows it on the page.
//!
//! How an expected block is read:
//! - one that starts with `HTTP/` is a response as `curl -i` prints it: the status line must
//!   be the same, each header shown must be among the headers received (others may be there
//!   too), and after the blank line comes the body;
//! - a body that is one JSON document is compared as JSON (key order aside); the string `"…"`
//!   stands for any value, and `…` inside a string for any text;
//! - any other body is compared line by line, `…` standing for any text within a line. The
//!   output may go on after the lines shown (a stream): once they have all arrived, the
//!   example is stopped.
//!
//! Examples run with `sh -c`, the page's address replaced with the server's; each has
//! [`EXAMPLE_LIMIT`] to show what the page says it shows.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::serve::start;

/// The page, as the repository has it.
const DOC: &str = include_str!("../../../../docs/http-api.md");
/// The server address the page's examples use.
const DOC_URL: &str = "http://127.0.0.1:6420";
/// How long one example may take to print what the page shows.
const EXAMPLE_LIMIT: Duration = Duration::from_secs(10);
/// Stands for anything in an expected block.
const ANY: &str = "…";

/// One example: a shell script and what it should print.
#[derive(Debug)]
struct Example {
    /// The line of the page the script starts on (1-based), for messages.
    line: usize,
    script: String,
    expected: String,
}

/// A fenced block of the page: its info string, first content line (1-based) and content.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    line: i + 2,
                    text: String::new(),
                });
            }
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a fenced block of the page is not closed");
    blocks
}

/// The page's examples: each `sh` block that calls `curl`, with the `text` block after it.
fn examples(doc: &str) -> Vec<Example> {
    let blocks = blocks(doc);
    let mut examples = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.info != "sh" || !block.text.contains("curl ") {
            continue;
        }
        let expected = blocks
            .get(i + 1)
            .filter(|next| next.info == "text")
            .unwrap_or_else(|| {
                panic!(
                    "the example on line {} has no ```text block after it",
                    block.line
                )
            });
        examples.push(Example {
            line: block.line,
            script: block.text.clone(),
            expected: expected.text.clone(),
        });
    }
    examples
}

/// Whether `text` matches `pattern`, where `…` stands for any text.
fn wildcard(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split(ANY);
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether `actual` matches `expected`, where the string `"…"` stands for any value and `…`
/// inside a string for any text.
fn json_matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == ANY => true,
        (Value::String(s), Value::String(a)) => wildcard(s, a),
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|a| json_matches(v, a)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| json_matches(e, a))
        }
        (e, a) => e == a,
    }
}

/// Why an output does not (yet) match.
#[derive(Debug)]
enum Mismatch {
    /// What has arrived so far is right; more is needed.
    Incomplete,
    /// It is wrong.
    Wrong(String),
}

/// Splits a `curl -i` output into the head's lines and the body, if it has a head.
fn split_head(text: &str) -> Option<(Vec<&str>, &str)> {
    if !text.starts_with("HTTP/") {
        return None;
    }
    let (head, body) = text.split_once("\n\n")?;
    Some((head.lines().collect(), body))
}

/// Compares an example's output with the page. `ended`: the script has exited, nothing more
/// will come.
fn check(expected: &str, output: &str, ended: bool) -> Result<(), Mismatch> {
    let output = output.replace("\r\n", "\n");
    let wrong = |why: String| Err(Mismatch::Wrong(why));
    let incomplete = || {
        if ended {
            Err(Mismatch::Wrong("the output ended early".to_owned()))
        } else {
            Err(Mismatch::Incomplete)
        }
    };
    let (expected_body, body) = match split_head(expected) {
        Some((want, expected_body)) => {
            let Some((got, body)) = split_head(&output) else {
                return if output.starts_with("HTTP/") || output.is_empty() {
                    incomplete()
                } else {
                    wrong("no response head".to_owned())
                };
            };
            if !wildcard(want[0], got[0].trim_end()) {
                return wrong(format!("status line {:?}, not {:?}", got[0], want[0]));
            }
            for header in &want[1..] {
                if !got[1..].iter().any(|h| wildcard(header, h.trim_end())) {
                    return wrong(format!("no header {header:?}"));
                }
            }
            (expected_body, body.to_owned())
        }
        None => (expected, output),
    };
    if let Ok(want) = serde_json::from_str::<Value>(expected_body) {
        return match serde_json::from_str::<Value>(&body) {
            Ok(got) if json_matches(&want, &got) => Ok(()),
            Ok(got) => wrong(format!("body {got}")),
            Err(_) => incomplete(),
        };
    }
    let got: Vec<&str> = body.lines().collect();
    let want: Vec<&str> = expected_body.lines().collect();
    // The last line may still be arriving (a WebSocket frame ends with no newline).
    let partial = !ended && !body.is_empty() && !body.ends_with('\n');
    for (i, line) in want.iter().enumerate() {
        match got.get(i) {
            Some(got) if wildcard(line, got.trim_end()) => {}
            Some(_) if partial && i + 1 == got.len() => return incomplete(),
            Some(got) => return wrong(format!("body line {}: {got:?}", i + 1)),
            None => return incomplete(),
        }
    }
    let trailing = got[want.len().min(got.len())..]
        .iter()
        .any(|l| !l.trim().is_empty());
    if ended && trailing {
        return wrong("more output than the page shows".to_owned());
    }
    Ok(())
}

/// Kills the example's shell and everything it started (its process group).
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(EXAMPLE_LIMIT, child.wait()).await;
}

/// Runs one example against `url`; `Err` says what went wrong.
async fn run(example: &Example, url: &str) -> Result<(), String> {
    let script = example.script.replace(DOC_URL, url);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let mut stdout = child.stdout.take().unwrap();
    let mut output = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + EXAMPLE_LIMIT;
    let result = loop {
        let read = tokio::time::timeout_at(deadline, stdout.read(&mut buffer)).await;
        let ended = match read {
            Ok(Ok(0)) => true,
            Ok(Ok(n)) => {
                output.extend_from_slice(&buffer[..n]);
                false
            }
            Ok(Err(e)) => break Err(format!("reading the output: {e}")),
            Err(_) => break Err(format!("not shown within {EXAMPLE_LIMIT:?}")),
        };
        match check(&example.expected, &String::from_utf8_lossy(&output), ended) {
            Ok(()) => break Ok(()),
            Err(Mismatch::Wrong(why)) => break Err(why),
            Err(Mismatch::Incomplete) if !ended => {}
            Err(Mismatch::Incomplete) => break Err("the output ended early".to_owned()),
        }
    };
    kill_group(&mut child).await;
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = tokio::time::timeout(EXAMPLE_LIMIT, err.read_to_string(&mut stderr)).await;
    }
    result.map_err(|why| {
        format!(
            "{why}\n--- script\n{script}--- expected\n{}--- output\n{}\n--- stderr\n{stderr}",
            example.expected,
            String::from_utf8_lossy(&output)
        )
    })
}

#[tokio::test]
async fn every_curl_example_of_the_http_api_page_shows_what_the_server_answers() {
    let examples = examples(DOC);
    assert!(
        examples.len() >= 20,
        "only {} examples found on the page",
        examples.len()
    );
    let curl = Command::new("curl").arg("--version").output().await;
    assert!(
        curl.is_ok_and(|out| out.status.success()),
        "the examples need `curl` on the PATH"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let mut failures = Vec::new();
    for example in &examples {
        if let Err(why) = run(example, &server.url).await {
            failures.push(format!("docs/http-api.md line {}: {why}", example.line));
        }
    }
    assert!(server.terminate().await.success());
    assert!(
        failures.is_empty(),
        "{} of {} examples differ from the page:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

#[test]
fn wildcards_stand_for_any_text() {
    assert!(wildcard("a…c", "abbc"));
    assert!(wildcard("…", ""));
    assert!(wildcard("…x…", "axb"));
    assert!(!wildcard("a…c", "abb"));
    assert!(!wildcard("abc", "abcd"));
    assert!(!wildcard("a…bc…c", "abc"));
}

#[test]
fn outputs_are_compared_with_the_page() {
    let page = "HTTP/1.1 200 OK\nx-id: …\n\n{\"output\":\"…\",\"n\":1}\n";
    let good = "HTTP/1.1 200 OK\r\nx-id: 7\r\ndate: now\r\n\r\n{\"n\":1,\"output\":[2]}";
    assert!(check(page, good, true).is_ok());
    assert!(matches!(
        check(page, "HTTP/1.1 200 OK\r\nx-id: 7\r\n\r\n{\"n\":1,", false),
        Err(Mismatch::Incomplete)
    ));
    for bad in [
        "HTTP/1.1 404 Not Found\r\nx-id: 7\r\n\r\n{\"n\":1,\"output\":2}",
        "HTTP/1.1 200 OK\r\n\r\n{\"n\":1,\"output\":2}",
        "HTTP/1.1 200 OK\r\nx-id: 7\r\n\r\n{\"n\":2,\"output\":2}",
        "HTTP/1.1 200 OK\r\nx-id: 7\r\n\r\n{\"n\":1,\"output\":2,\"more\":0}",
    ] {
        assert!(
            matches!(check(page, bad, true), Err(Mismatch::Wrong(_))),
            "{bad}"
        );
    }
    // A stream: the lines shown, then anything.
    let stream = "event: a\ndata: {…}\n";
    assert!(check(stream, "event: a\ndata: {}\n\nevent: b\n", false).is_ok());
    assert!(matches!(
        check(stream, "event: a\ndata: {", false),
        Err(Mismatch::Incomplete)
    ));
    assert!(matches!(
        check(stream, "event: a\ndata: {", true),
        Err(Mismatch::Wrong(_))
    ));
    assert!(matches!(
        check(stream, "event: b\n", false),
        Err(Mismatch::Wrong(_))
    ));
    assert!(matches!(
        check("a\n", "a\nb\n", true),
        Err(Mismatch::Wrong(_))
    ));
}
