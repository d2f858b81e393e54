//! No acknowledged write is lost: a child process hosting the counter on a SQLite file is
//! killed with SIGKILL at a random moment while increments are in flight, then restarted on
//! the same file. The recovered count must be at least the highest acknowledged count and at
//! most the number of increments ever sent. Likewise for new actors: every acknowledged
//! get-or-create is found again after the kill, with the same id and its increment.

use std::collections::BTreeMap;

use std::process::Stdio;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Rounds per run. Each round is a start, a burst of increments, a kill and a check.
const ROUNDS: usize = 20;

struct ChildProc {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

async fn start(db: &std::path::Path, durability: &str) -> ChildProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_footlights-crash-child"))
        .arg(db)
        .arg(durability)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn child");
    let stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines
        .next_line()
        .await
        .expect("read")
        .expect("child exited before ready");
    assert_eq!(first, "ready");
    ChildProc {
        child,
        stdin,
        lines,
    }
}

async fn next_line(p: &mut ChildProc) -> String {
    p.lines
        .next_line()
        .await
        .expect("read")
        .expect("child exited")
}

fn seed() -> u64 {
    let seed: u64 = std::env::var("FOOTLIGHTS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (set FOOTLIGHTS_CRASH_SEED to replay)");
    seed
}

/// Sends `commands` in one write, reads the first `n` answer lines, then kills the child with
/// SIGKILL and waits for it: acknowledgements beyond those `n` may or may not have been made.
async fn burst_then_kill(p: &mut ChildProc, commands: &str, n: usize) -> Vec<String> {
    p.stdin
        .write_all(commands.as_bytes())
        .await
        .expect("write burst");
    p.stdin.flush().await.expect("flush");
    let mut lines = Vec::with_capacity(n);
    for _ in 0..n {
        lines.push(next_line(p).await);
    }
    p.child.start_kill().expect("kill");
    p.child.wait().await.expect("wait");
    lines
}

async fn read_value(p: &mut ChildProc) -> i64 {
    p.stdin.write_all(b"get\n").await.expect("write");
    loop {
        let line = p
            .lines
            .next_line()
            .await
            .expect("read")
            .expect("child exited");
        if let Some(v) = line.strip_prefix("value ") {
            return v.parse().expect("number");
        }
        assert!(line.starts_with("ack "), "unexpected line {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_increment() {
    sigkill_rounds("power").await;
}

/// `Durability::Process` skips the `fsync`, yet a killed process loses nothing: the commit is in
/// the operating system's page cache, which outlives the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_increment_with_process_durability() {
    sigkill_rounds("process").await;
}

async fn sigkill_rounds(durability: &str) {
    let seed = seed();
    eprintln!("durability: {durability}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.db");

    let mut sent: i64 = 0;
    let mut max_acked: i64 = 0;
    let mut total_acks = 0usize;
    for round in 0..ROUNDS {
        let mut p = start(&db, durability).await;
        let recovered = read_value(&mut p).await;
        assert!(
            recovered >= max_acked,
            "round {round}: recovered {recovered} < acknowledged {max_acked} (seed {seed})"
        );
        assert!(
            recovered <= sent,
            "round {round}: recovered {recovered} > sent {sent} (seed {seed})"
        );
        // Everything before this point is settled; the next bound starts from what was recovered.
        max_acked = recovered;
        sent = recovered;

        let burst: usize = rng.random_range(20..200);
        let kill_after: usize = rng.random_range(0..=burst);
        let mut commands = Vec::with_capacity(burst * 4);
        for _ in 0..burst {
            commands.extend_from_slice(b"inc\n");
        }
        sent += burst as i64;
        p.stdin.write_all(&commands).await.expect("write burst");
        p.stdin.flush().await.expect("flush");
        let mut acks = 0usize;
        while acks < kill_after {
            let line = p
                .lines
                .next_line()
                .await
                .expect("read")
                .expect("child exited");
            let n: i64 = line
                .strip_prefix("ack ")
                .unwrap_or_else(|| panic!("unexpected line {line:?}"))
                .parse()
                .expect("number");
            max_acked = max_acked.max(n);
            acks += 1;
        }
        total_acks += acks;
        p.child.start_kill().expect("kill");
        p.child.wait().await.expect("wait");
    }
    let mut p = start(&db, durability).await;
    let last = read_value(&mut p).await;
    assert!(
        last >= max_acked && last <= sent,
        "final {last} not in [{max_acked}, {sent}]"
    );
    assert!(
        total_acks > 0 || ROUNDS == 0,
        "no increment was ever acknowledged"
    );
    p.child.start_kill().expect("kill");
    let _ = p.child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_actor() {
    const CREATE_ROUNDS: usize = 8;
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("create.db");

    // Acknowledged actors: key -> id.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut next_key = 0usize;
    for round in 0..=CREATE_ROUNDS {
        let mut p = start(&db, "power").await;
        for (key, id) in &acked {
            p.stdin
                .write_all(format!("find {key}\n").as_bytes())
                .await
                .expect("write");
            let line = next_line(&mut p).await;
            assert_eq!(
                line,
                format!("found {key} {id} 1"),
                "round {round}: an acknowledged actor changed or vanished (seed {seed})"
            );
        }
        if round == CREATE_ROUNDS {
            p.child.start_kill().expect("kill");
            let _ = p.child.wait().await;
            break;
        }
        let burst: usize = rng.random_range(20..200);
        let kill_after: usize = rng.random_range(0..=burst);
        let commands: String = (next_key..next_key + burst)
            .map(|i| format!("new k{i}\n"))
            .collect();
        next_key += burst;
        for line in burst_then_kill(&mut p, &commands, kill_after).await {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["created", key, id, "1"] => {
                    acked.insert((*key).to_owned(), (*id).to_owned());
                }
                _ => panic!("round {round}: unexpected line {line:?}"),
            }
        }
    }
    assert!(
        !acked.is_empty() || CREATE_ROUNDS == 0,
        "no create was ever acknowledged (seed {seed})"
    );
}

/// The key-value store variant: every acknowledged `put` is in the store after a SIGKILL, and
/// nothing that was never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_kv_put() {
    const PUT_ROUNDS: usize = 10;
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kv.db");

    let mut acked: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    let mut sent: u64 = 0;
    for round in 0..=PUT_ROUNDS {
        let mut p = start(&db, "power").await;
        p.stdin.write_all(b"entries\n").await.expect("write");
        let line = next_line(&mut p).await;
        let stored: std::collections::BTreeSet<u64> = line
            .strip_prefix("entries")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .split_whitespace()
            .map(|n| n.parse().expect("number"))
            .collect();
        let lost: Vec<&u64> = acked.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged puts lost: {lost:?} (seed {seed})"
        );
        assert!(
            stored.iter().all(|n| *n < sent),
            "round {round}: an entry that was never sent (seed {seed})"
        );
        if round == PUT_ROUNDS {
            p.child.start_kill().expect("kill");
            let _ = p.child.wait().await;
            break;
        }
        let burst: u64 = rng.random_range(20..200);
        let kill_after = rng.random_range(0..=burst) as usize;
        let commands: String = (sent..sent + burst).map(|n| format!("put {n}\n")).collect();
        sent += burst;
        for line in burst_then_kill(&mut p, &commands, kill_after).await {
            let n: u64 = line
                .strip_prefix("stored ")
                .unwrap_or_else(|| panic!("round {round}: unexpected line {line:?}"))
                .parse()
                .expect("number");
            acked.insert(n);
        }
    }
    assert!(
        !acked.is_empty(),
        "no put was ever acknowledged (seed {seed})"
    );
}

/// The SQL variant: every acknowledged insert is in the actor's database after a SIGKILL,
/// nothing that was never sent is, the database passes `PRAGMA integrity_check`, and the
/// counter bumped in each insert's transaction agrees with the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_sql_insert() {
    const SQL_ROUNDS: usize = 10;
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("sql.db");

    let mut acked: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    let mut sent: u64 = 0;
    for round in 0..=SQL_ROUNDS {
        let mut p = start(&db, "power").await;
        p.stdin.write_all(b"sql-rows\n").await.expect("write");
        let line = next_line(&mut p).await;
        let mut words = line
            .strip_prefix("sql-rows ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .split_whitespace();
        assert_eq!(
            words.next(),
            Some("ok"),
            "round {round}: the database is not consistent (seed {seed})"
        );
        let stored: std::collections::BTreeSet<u64> =
            words.map(|n| n.parse().expect("number")).collect();
        let lost: Vec<&u64> = acked.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged inserts lost: {lost:?} (seed {seed})"
        );
        assert!(
            stored.iter().all(|n| *n < sent),
            "round {round}: a row that was never sent (seed {seed})"
        );
        if round == SQL_ROUNDS {
            p.child.start_kill().expect("kill");
            let _ = p.child.wait().await;
            break;
        }
        let burst: u64 = rng.random_range(20..200);
        let kill_after = rng.random_range(0..=burst) as usize;
        let commands: String = (sent..sent + burst)
            .map(|n| format!("sql-put {n}\n"))
            .collect();
        sent += burst;
        for line in burst_then_kill(&mut p, &commands, kill_after).await {
            let n: u64 = line
                .strip_prefix("sql-stored ")
                .unwrap_or_else(|| panic!("round {round}: unexpected line {line:?}"))
                .parse()
                .expect("number");
            acked.insert(n);
        }
    }
    assert!(
        !acked.is_empty(),
        "no insert was ever acknowledged (seed {seed})"
    );
}

/// Reads the ticker's `(ticks, history length)`; `None` for a job that is not set.
async fn tick_status(p: &mut ChildProc) -> (u64, Option<usize>) {
    p.stdin.write_all(b"tick-status\n").await.expect("write");
    let line = next_line(p).await;
    let mut words = line
        .strip_prefix("ticks ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .split_whitespace();
    let ticks = words.next().expect("ticks").parse().expect("number");
    let history = match words.next().expect("history") {
        "-" => None,
        n => Some(n.parse().expect("number")),
    };
    (ticks, history)
}

/// A repeating job set by an acknowledged call survives SIGKILL, and each fire's effect and
/// the job's re-arm are one commit: after any kill, the job's history has exactly one entry
/// per tick (up to its bound of 16), and the job keeps firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_a_repeating_job_or_splits_a_fire() {
    const TICK_ROUNDS: usize = 6;
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ticks.db");

    let mut p = start(&db, "power").await;
    p.stdin.write_all(b"tick-every 5\n").await.expect("write");
    assert_eq!(next_line(&mut p).await, "ticking");
    let mut seen = 0;
    for round in 0..TICK_ROUNDS {
        // Let it tick a random number of times past what it had, then kill it mid-stream.
        let target = seen + rng.random_range(1..8);
        let mut polls = 0;
        loop {
            let (ticks, history) = tick_status(&mut p).await;
            let history =
                history.unwrap_or_else(|| panic!("round {round}: job lost (seed {seed})"));
            assert_eq!(
                history,
                usize::try_from(ticks).unwrap().min(16),
                "round {round}: a fire and its re-arm were split (seed {seed})"
            );
            assert!(
                ticks >= seen,
                "round {round}: ticks went back (seed {seed})"
            );
            seen = ticks;
            if ticks >= target {
                break;
            }
            polls += 1;
            assert!(
                polls < 5000,
                "round {round}: the job stopped firing (seed {seed})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        p.child.start_kill().expect("kill");
        p.child.wait().await.expect("wait");
        p = start(&db, "power").await;
    }
    let (ticks, history) = tick_status(&mut p).await;
    assert!(ticks >= seen, "acknowledged ticks lost (seed {seed})");
    assert_eq!(history, Some(usize::try_from(ticks).unwrap().min(16)));
    p.child.start_kill().expect("kill");
    let _ = p.child.wait().await;
}
