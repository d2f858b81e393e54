//! Logs written here byte by byte, and one written by SQLite.

use super::*;

const PAGE: u32 = 512;

/// One frame to write: page number, commit size (0 for none), and the byte filling its page.
#[derive(Clone, Copy)]
struct Frame(u32, u32, u8);

/// A log with header salts `salts` and `frames`, checksummed as SQLite does.
fn log(big_endian: bool, salts: Sum, frames: &[Frame]) -> Vec<u8> {
    let magic = MAGIC | u32::from(big_endian);
    let mut bytes = Vec::new();
    for word in [magic, 3_007_000, PAGE, 0, salts.0, salts.1] {
        bytes.extend(word.to_be_bytes());
    }
    let mut sum = checksum(big_endian, (0, 0), &bytes);
    bytes.extend(sum.0.to_be_bytes());
    bytes.extend(sum.1.to_be_bytes());
    for &Frame(page_number, commit, fill) in frames {
        let mut head = Vec::new();
        head.extend(page_number.to_be_bytes());
        head.extend(commit.to_be_bytes());
        let page = vec![fill; PAGE as usize];
        sum = checksum(big_endian, checksum(big_endian, sum, &head), &page);
        for word in [salts.0, salts.1, sum.0, sum.1] {
            head.extend(word.to_be_bytes());
        }
        bytes.extend(head);
        bytes.extend(page);
    }
    bytes
}

/// `newer` written over `older` from the start, as a reused log is.
fn overlay(newer: &[u8], older: &[u8]) -> Vec<u8> {
    let mut bytes = newer.to_vec();
    bytes.extend(older.iter().skip(newer.len()));
    bytes
}

fn frame_start(index: u64) -> u64 {
    HEADER_LEN + index * (FRAME_HEADER_LEN as u64 + u64::from(PAGE))
}

/// Flips a byte in the page of frame `index`.
fn garble(bytes: &mut [u8], index: u64) {
    let at = usize::try_from(frame_start(index)).unwrap() + FRAME_HEADER_LEN + 100;
    bytes[at] ^= 0x5a;
}

fn scanned(bytes: &[u8]) -> Scan {
    scan(bytes, bytes.len() as u64).unwrap()
}

fn scanned_log(bytes: &[u8]) -> Log {
    match scanned(bytes) {
        Scan::Log(log) => log,
        other => panic!("not read as a log: {other:?}"),
    }
}

/// Five transactions of two frames each: a page, then the commit frame.
fn five_transactions() -> Vec<Frame> {
    (1..=5u8)
        .flat_map(|n| [Frame(2, 0, n), Frame(3, 3, n)])
        .collect()
}

#[test]
fn a_whole_log_replays_every_commit_in_either_byte_order() {
    for big_endian in [false, true] {
        let bytes = log(big_endian, (7, 9), &five_transactions());
        let log = scanned_log(&bytes);
        assert_eq!(
            log,
            Log {
                frames: 10,
                commits: 5,
                first_bad: None,
                commits_after: 0,
                dropped_bytes: 0,
            }
        );
        assert_eq!(log.damage(), None);
    }
}

#[test]
fn a_log_cut_in_its_last_frame_drops_only_the_last_transaction() {
    let bytes = log(false, (7, 9), &five_transactions());
    let cut = &bytes[..bytes.len() - 200];
    let log = scanned_log(cut);
    assert_eq!((log.frames, log.commits, log.first_bad), (9, 4, None));
    assert_eq!(log.dropped_bytes, cut.len() as u64 - frame_start(8));
    assert_eq!(log.damage(), None);
}

#[test]
fn a_torn_frame_in_the_last_transaction_is_no_damage() {
    // A power cut while the last transaction was written: its first frame did not reach the
    // disk whole, its commit frame did.
    let mut bytes = log(false, (7, 9), &five_transactions());
    garble(&mut bytes, 8);
    let log = scanned_log(&bytes);
    assert_eq!(log.commits, 4);
    assert_eq!(log.first_bad, Some(frame_start(8)));
    assert_eq!(log.commits_after, 1);
    assert_eq!(log.damage(), None);
}

#[test]
fn a_damaged_frame_with_later_transactions_is_damage() {
    let mut bytes = log(false, (7, 9), &five_transactions());
    // The first frame of the second transaction: it and the three after it are lost.
    garble(&mut bytes, 2);
    let log = scanned_log(&bytes);
    assert_eq!(log.commits, 1);
    assert_eq!(log.first_bad, Some(frame_start(2)));
    assert_eq!(log.commits_after, 4);
    assert_eq!(log.damage(), Some((frame_start(2), 4)));

    // A damaged commit frame: the later three are still intact.
    let mut bytes = log_bytes_with_commit_damaged();
    let log = scanned_log(&bytes);
    assert_eq!(log.damage(), Some((frame_start(3), 3)));
    // A second damaged commit frame is not counted.
    garble(&mut bytes, 7);
    assert_eq!(scanned_log(&bytes).damage(), Some((frame_start(3), 2)));
}

fn log_bytes_with_commit_damaged() -> Vec<u8> {
    let mut bytes = log(false, (7, 9), &five_transactions());
    garble(&mut bytes, 3);
    bytes
}

#[test]
fn frames_of_an_earlier_generation_past_the_end_are_no_damage() {
    let older: Vec<Frame> = (1..=20u8).map(|n| Frame(2, u32::from(n % 2), n)).collect();
    let older = log(false, (41, 1234), &older);
    let newer = log(false, (42, 777), &five_transactions()[..6]);
    let bytes = overlay(&newer, &older);
    let log = scanned_log(&bytes);
    assert_eq!(log.frames, 20);
    assert_eq!(log.commits, 3);
    assert_eq!(log.first_bad, Some(frame_start(6)));
    assert_eq!(log.commits_after, 0, "other salts");
    assert_eq!(log.damage(), None);
}

#[test]
fn frames_of_a_rolled_back_transaction_past_the_end_are_no_damage() {
    // A large transaction spilled frames and rolled back; the next one wrote over part of them.
    let spilled: Vec<Frame> = [Frame(2, 2, 1)]
        .into_iter()
        .chain((0..6).map(|n| Frame(3 + n, 0, 9)))
        .collect();
    let spilled = log(false, (7, 9), &spilled);
    let next = log(false, (7, 9), &[Frame(2, 2, 1), Frame(4, 4, 2)]);
    let bytes = overlay(&next, &spilled);
    let log = scanned_log(&bytes);
    assert_eq!(log.commits, 2);
    assert_eq!(log.first_bad, Some(frame_start(2)));
    assert_eq!(log.commits_after, 0, "no commit mark in the leftovers");
    assert_eq!(log.damage(), None);
}

#[test]
fn a_damaged_header_drops_everything() {
    let mut bytes = log(true, (7, 9), &five_transactions());
    bytes[12] ^= 1; // the checkpoint counter, under the header's checksum
    let log = scanned_log(&bytes);
    assert_eq!(log.commits, 0);
    assert_eq!(log.first_bad, Some(0));
    assert_eq!(
        log.dropped_bytes,
        bytes.len() as u64 - HEADER_LEN,
        "every frame"
    );
    assert_eq!(log.damage(), Some((0, 5)));
}

#[test]
fn short_and_foreign_files_are_not_logs() {
    assert_eq!(scanned(&[]), Scan::Empty);
    assert_eq!(scanned(&[0x37; 31]), Scan::Empty);
    assert_eq!(scanned(&[0; 4096]), Scan::Unreadable);
    let mut bytes = log(false, (7, 9), &five_transactions());
    bytes[10] = 0x11; // a page size that is not a power of two
    assert_eq!(scanned(&bytes), Scan::Unreadable);
    // A header alone: nothing to replay, nothing dropped.
    let header = log(false, (7, 9), &[]);
    assert_eq!(scanned_log(&header).frames, 0);
    assert_eq!(scanned_log(&header).dropped_bytes, 0);
}

#[test]
fn a_log_written_by_sqlite_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
    for n in 0..5 {
        conn.execute("INSERT INTO t VALUES (?1)", [vec![n; 3000]])
            .unwrap();
    }
    // Read while the connection is open: closing it would checkpoint and delete the log.
    let bytes = std::fs::read(path(&db)).unwrap();
    let log = scanned_log(&bytes);
    assert_eq!(log.commits, 6, "{log:?}");
    assert_eq!(log.first_bad, None);
    assert_eq!(log.dropped_bytes, 0);
    drop(conn);
}
