//! What saving a large state costs on disk: bytes the process writes per byte of state saved,
//! for an actor whose state is 1 MB and one caller changing it one action at a time, in two
//! ways: one character replaced (the snapshot keeps its size and most of its bytes; SQLite
//! rewrites only the pages that differ) and one character inserted near the start (every byte
//! after it moves: the worst case, the whole snapshot is new).
//!
//! `cargo bench -p footlights-test --bench snapshot`. Env: `BENCH_ACTIONS` (300),
//! `BENCH_STATE_BYTES` (1048576). On a SQLite file in a temp dir, with an fsync per commit.
//! The count runs from the first action to the end of the registry's shutdown, so the
//! write-ahead log's last checkpoint is part of it. Bytes come from `/proc/self/io`: `wchar`
//! (what the process handed to `write`/`pwrite`) and `write_bytes` (what it sent to the block
//! layer; 0 on file systems that do not account it).
//!
//! Nothing here asserts a target: the report is read and compared by people.

use std::time::Instant;

use footlights::prelude::*;
use footlights::storage::SqliteDriver;

/// A large text and a counter; each action changes one character of the text.
#[derive(Default, Serialize, Deserialize)]
struct Document {
    text: String,
    edits: u64,
}

#[footlights::actor]
impl Document {
    /// Makes the text `len` letters long.
    #[action]
    fn fill(&mut self, len: u64) -> u64 {
        // Letters in no repeating order, so that moved bytes differ from the ones they replace.
        let mut x: u32 = 1;
        self.text = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (b'a' + (x >> 24) as u8 % 26) as char
            })
            .collect();
        self.text.len() as u64
    }

    /// Inserts a character at `at` (modulo the length) and drops the last one.
    #[action]
    fn shift(&mut self, at: u64) -> u64 {
        if !self.text.is_empty() {
            let i = (at % self.text.len() as u64) as usize;
            self.text.pop();
            self.text.insert(i, 'b');
        }
        self.edits += 1;
        self.edits
    }

    /// Replaces the character at `at` (modulo the length) by the next letter.
    #[action]
    fn edit(&mut self, at: u64) -> u64 {
        if !self.text.is_empty() {
            let i = (at % self.text.len() as u64) as usize;
            let next = match self.text.as_bytes()[i] {
                b'z' => 'a',
                c => (c + 1) as char,
            };
            self.text
                .replace_range(i..i + 1, next.encode_utf8(&mut [0; 4]));
        }
        self.edits += 1;
        self.edits
    }
}

/// `wchar` and `write_bytes` of this process so far.
fn io_counters() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("write_bytes:"))
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let actions = env("BENCH_ACTIONS", 300);
    let state_bytes = env("BENCH_STATE_BYTES", 1 << 20);
    println!(
        "## Saving a large state (`cargo bench -p footlights-test --bench snapshot`, in process, SQLite with an fsync per commit)"
    );
    println!();
    println!(
        "State size {state_bytes} B; {actions} actions per row, one caller; bytes counted from the first action through the registry's shutdown."
    );
    println!();
    println!(
        "| change per action | actions/s | p50 | written per state byte saved (wchar) | same, block layer (write_bytes) |"
    );
    println!("|---|---|---|---|---|");
    for shifting in [false, true] {
        let dir = tempfile::tempdir()?;
        let driver = SqliteDriver::builder(dir.path().join("snapshot.db"))
            .open()
            .await?;
        let registry = Registry::builder()
            .actor::<Document>()
            .driver(driver)
            .start()
            .await?;
        let doc = registry.client().get_or_create::<Document>("big");
        doc.fill(state_bytes).await?;

        let (wchar0, block0) = io_counters();
        let t0 = Instant::now();
        let mut latencies = Vec::with_capacity(actions as usize);
        for i in 0..actions {
            let t = Instant::now();
            if shifting {
                doc.shift(i % 64).await?;
            } else {
                doc.edit(i * 4099).await?;
            }
            latencies.push(t.elapsed());
        }
        let elapsed = t0.elapsed();
        registry.shutdown().await;
        let (wchar1, block1) = io_counters();
        latencies.sort_unstable();
        let p50 = latencies[latencies.len() / 2];
        // The saved state is the text plus a few bytes of encoding around it.
        let saved = (actions * state_bytes) as f64;
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2}× | {:.2}× |",
            if shifting {
                "one character inserted near the start (every byte after it moves)"
            } else {
                "one character replaced (same size)"
            },
            actions as f64 / elapsed.as_secs_f64(),
            p50.as_secs_f64() * 1000.0,
            (wchar1 - wchar0) as f64 / saved,
            (block1 - block0) as f64 / saved,
        );
    }
    Ok(())
}
