//! Reading the write-ahead log before SQLite does, so that a damaged log is refused instead of
//! being cut short without a word.
//!
//! # What SQLite does with the log at open
//!
//! The log, `<database>-wal`, is a 32-byte header followed by frames, each a 24-byte header and
//! one page. The header holds a magic number (`0x377f0682`, or `0x377f0683` when the checksums
//! read the data as big-endian words), the format version, the page size, a checkpoint counter,
//! two salts, and a checksum of its own first 24 bytes. A frame header holds the page number, the
//! size of the database in pages if the frame is the last of a transaction (its *commit frame*;
//! 0 otherwise), the log's two salts, and a checksum. Checksums are cumulative: a frame's covers
//! its first 8 header bytes and its page, starting from the checksum before it (the header's,
//! for the first frame). Every header field is big-endian. When the log is reused after a
//! checkpoint, its header gets new salts and frames are written again from the start, so frames
//! past the new end keep the salts of an earlier generation.
//!
//! When SQLite opens the database it replays frames in order until the first one whose salts or
//! checksum do not match (none at all if the header's own checksum fails), and keeps the
//! transactions up to the last commit frame before that point. The rest is dropped, and nothing
//! says so.
//!
//! # When the store is refused
//!
//! A dropped tail is normal after a crash: the transaction being written when the process died
//! or the power went out never returned to its caller, and any part of it may be on disk. A
//! dropped *acknowledged* commit is not normal. To tell them apart, [`scan`] also checks every
//! frame past the first failing one on its own: its salts must be the log's, and its checksum
//! must follow from the checksum stored in the frame just before it (whatever that frame's
//! state). A frame that passes was written whole, in this generation of the log, right after its
//! predecessor. Call it *intact*.
//!
//! **The rule: the store is refused when at least two intact commit frames follow the first
//! failing frame.**
//!
//! Why two. With `synchronous=FULL` ([`Durability::Power`], the default) SQLite syncs the log
//! when a transaction commits, before the commit returns, and this driver's one writer begins
//! the next transaction only after that. A second intact commit frame therefore shows that the
//! transaction ending at the first one had reached the disk whole before the later one was
//! written. The failing frame before it was written correctly and damaged afterwards (a failing
//! disk, a stray write, a log edited or copied badly, a disk that confirms syncs it has not
//! done), and the transactions ending at every intact commit frame but the last had been
//! acknowledged. After a crash, on the other hand, only the last transaction can be incomplete,
//! and it has one commit frame at most, its last frame: one intact commit frame past the failing
//! frame is what a torn last transaction looks like, and it is let through. (So is an
//! acknowledged last transaction damaged afterwards: it cannot be told from a torn one.) Frames
//! of a rolled-back transaction that lie past the end never carry a commit mark, and frames of
//! an earlier generation carry other salts, so neither counts.
//!
//! With [`Durability::Process`] (`synchronous=NORMAL`) the log is synced at checkpoints only,
//! and a power cut may leave any subset of the frames written since the last one on disk: holes
//! followed by intact commits are then what the loss that setting accepts looks like. So with
//! that setting the same finding is logged at WARN, a copy of the log is kept aside, and the
//! store opens.
//!
//! A header whose checksum fails makes SQLite ignore the whole log. The rule is the same, with
//! the header as the failing point: SQLite syncs a new header before it writes frames after it,
//! and a 32-byte write at the start of a file is taken to be atomic. A header that is not a log
//! header at all (its magic number or page size) is only logged at WARN, since nothing after it
//! can be checked; a version other than SQLite's makes SQLite itself refuse the file.
//!
//! The count in the error is the number of intact commit frames past the failing frame: every
//! one of those transactions but perhaps the last had been acknowledged. What the rule cannot
//! see: damage in the last transaction alone (it looks like a torn one), and a transaction whose
//! commit frame was damaged too (it is not counted). It rests on each transaction being synced
//! before the next one is written; on a disk that confirms syncs it has not done, a power cut
//! can leave the same pattern, and the store is refused: acknowledged commits are lost there
//! too.
//!
//! The log is read only when no other write connection of this process has the file open
//! (`lock.rs`): otherwise SQLite has read it already, and it may be changing.
//!
//! [`Durability::Power`]: crate::Durability::Power
//! [`Durability::Process`]: crate::Durability::Process

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use footlights_storage::{Result, StorageError};

use crate::Durability;
use crate::error::Error;

/// The magic number with its lowest bit clear; that bit set means big-endian checksums.
const MAGIC: u32 = 0x377f_0682;
/// Bytes in the log's header.
const HEADER_LEN: u64 = 32;
/// Bytes in a frame's header.
const FRAME_HEADER_LEN: usize = 24;
/// The page sizes SQLite accepts.
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 512..=65536;

/// The write-ahead log of the database at `database`: its path with `-wal` added.
pub(crate) fn path(database: &Path) -> PathBuf {
    let mut log = database.as_os_str().to_owned();
    log.push("-wal");
    PathBuf::from(log)
}

/// A checksum: two 32-bit words.
type Sum = (u32, u32);

/// SQLite's log checksum of `bytes` (a multiple of 8 long), continuing from `seed`: each pair of
/// words `a, b` makes `s0 += a + s1; s1 += b + s0`, wrapping.
fn checksum(big_endian: bool, seed: Sum, bytes: &[u8]) -> Sum {
    let word = if big_endian {
        u32::from_be_bytes
    } else {
        u32::from_le_bytes
    };
    let (pairs, _) = bytes.as_chunks::<8>();
    pairs
        .iter()
        .fold(seed, |(s0, s1), &[a0, a1, a2, a3, b0, b1, b2, b3]| {
            let s0 = s0.wrapping_add(word([a0, a1, a2, a3])).wrapping_add(s1);
            let s1 = s1.wrapping_add(word([b0, b1, b2, b3])).wrapping_add(s0);
            (s0, s1)
        })
}

/// The big-endian word at `at` in `bytes` (0 past the end).
fn word(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|word| <[u8; 4]>::try_from(word).ok())
        .map_or(0, u32::from_be_bytes)
}

/// What a log holds, as SQLite will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Shorter than a header: nothing to replay (a log created and never written, or emptied
    /// by a checkpoint).
    Empty,
    /// A header SQLite does not take for a log's (magic number, page size): it ignores the file.
    Unreadable,
    /// A log SQLite reads.
    Log(Log),
}

/// A log's frames, as [`scan`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Log {
    /// Whole frames in the file.
    pub(crate) frames: u64,
    /// Commit frames SQLite replays.
    pub(crate) commits: u64,
    /// Where SQLite stops reading: the start of the first frame that fails its check, or 0 if
    /// the header's does; `None` if every whole frame passes.
    pub(crate) first_bad: Option<u64>,
    /// Intact commit frames (see the module docs) after `first_bad`.
    pub(crate) commits_after: u64,
    /// Bytes past the last commit frame SQLite replays, which it drops: a transaction left
    /// unfinished, a torn frame, frames of an earlier generation.
    pub(crate) dropped_bytes: u64,
}

impl Log {
    /// Where the log is damaged and how many commits SQLite would drop with it, if the frames
    /// prove that acknowledged commits would be lost (the rule of the module docs).
    pub(crate) fn damage(&self) -> Option<(u64, u64)> {
        let offset = self.first_bad?;
        (self.commits_after >= 2).then_some((offset, self.commits_after))
    }
}

/// Reads the log in `reader`, `len` bytes long, to its last whole frame.
pub(crate) fn scan(mut reader: impl Read, len: u64) -> io::Result<Scan> {
    if len < HEADER_LEN {
        return Ok(Scan::Empty);
    }
    let mut header = [0; HEADER_LEN as usize];
    reader.read_exact(&mut header)?;
    let magic = word(&header, 0);
    let page_size = word(&header, 8);
    if magic & !1 != MAGIC || !page_size.is_power_of_two() || !PAGE_SIZES.contains(&page_size) {
        return Ok(Scan::Unreadable);
    }
    let big_endian = magic & 1 == 1;
    let salts = (word(&header, 16), word(&header, 20));
    let stored: Sum = (word(&header, 24), word(&header, 28));
    let (summed, _) = header.split_at(24);
    let header_ok = checksum(big_endian, (0, 0), summed) == stored;

    let frame_len = FRAME_HEADER_LEN + page_size as usize;
    let frames = (len - HEADER_LEN) / frame_len as u64;
    let mut frame = vec![0; frame_len];
    // While every frame so far passed, the stored checksums are the cumulative ones, so "intact"
    // is exactly SQLite's check up to the first failure.
    let mut previous = stored;
    let mut first_bad = (!header_ok).then_some(0);
    let (mut commits, mut commits_after) = (0, 0);
    let mut replayed_end = HEADER_LEN;
    for index in 0..frames {
        reader.read_exact(&mut frame)?;
        let (head, page) = frame.split_at(FRAME_HEADER_LEN);
        let (summed, _) = head.split_at(8);
        let sum = (word(head, 16), word(head, 20));
        let intact = (word(head, 8), word(head, 12)) == salts
            && word(head, 0) != 0
            && checksum(big_endian, checksum(big_endian, previous, summed), page) == sum;
        let commit = word(head, 4) != 0;
        let end = HEADER_LEN + (index + 1) * frame_len as u64;
        match first_bad {
            None if intact => {
                if commit {
                    commits += 1;
                    replayed_end = end;
                }
            }
            None => first_bad = Some(end - frame_len as u64),
            Some(_) => commits_after += u64::from(intact && commit),
        }
        previous = sum;
    }
    Ok(Scan::Log(Log {
        frames,
        commits,
        first_bad,
        commits_after,
        dropped_bytes: len - replayed_end,
    }))
}

/// Reads the log beside `database` before SQLite opens it, and refuses it (logged at ERROR) if
/// SQLite would drop acknowledged commits, unless `recover`; see the module docs. Returns
/// whether the log file exists.
pub(crate) fn check(database: &Path, durability: Durability, recover: bool) -> Result<bool> {
    let wal = path(database);
    let file = match File::open(&wal) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StorageError::backend(e)),
    };
    let len = file.metadata().map_err(StorageError::backend)?.len();
    let started = std::time::Instant::now();
    let found =
        scan(BufReader::with_capacity(1 << 16, file), len).map_err(StorageError::backend)?;
    tracing::debug!(wal = %wal.display(), len, elapsed = ?started.elapsed(), ?found, "read the write-ahead log");
    let log = match found {
        Scan::Empty => return Ok(true),
        Scan::Unreadable => {
            tracing::warn!(
                wal = %wal.display(),
                len,
                "the write-ahead log does not start with a log header: SQLite ignores it, and \
                 whatever it held is not in the store"
            );
            return Ok(true);
        }
        Scan::Log(log) => log,
    };
    let Some((offset, commits)) = log.damage() else {
        if log.dropped_bytes > 0 && log.first_bad.is_some() {
            tracing::info!(
                wal = %wal.display(),
                offset = log.first_bad,
                dropped_bytes = log.dropped_bytes,
                "the write-ahead log ends with a transaction left unfinished by a crash: it was \
                 never acknowledged, and is dropped"
            );
        }
        return Ok(true);
    };
    let damage = Error::WalDamaged {
        wal: wal.clone(),
        offset,
        commits,
    };
    if recover {
        let copy = keep_copy(&wal)?;
        tracing::error!(
            wal = %wal.display(),
            offset,
            commits,
            copy = %copy.display(),
            "opening the store with a damaged write-ahead log, as asked: the {commits} commits \
             after byte {offset} are given up; the log as it was is kept in the copy"
        );
    } else if durability == Durability::Process {
        let copy = keep_copy(&wal)?;
        tracing::warn!(
            wal = %wal.display(),
            offset,
            commits,
            copy = %copy.display(),
            "the write-ahead log has a hole at byte {offset}, and the {commits} commits after it \
             are dropped: with durability `process` a power cut can leave this; the log as it \
             was is kept in the copy"
        );
    } else {
        tracing::error!(error = %damage, "refusing to open the store");
        return Err(StorageError::backend(damage));
    }
    Ok(true)
}

/// Copies the log at `wal` to `<wal>.damaged-<unix seconds>` beside it (with `-2`, `-3`… added
/// if taken) and syncs the copy; returns its path.
fn keep_copy(wal: &Path) -> Result<PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = wal.as_os_str().to_owned();
    name.push(format!(".damaged-{seconds}"));
    let mut copy = PathBuf::from(&name);
    let mut n = 1;
    while copy.exists() {
        n += 1;
        let mut numbered = name.clone();
        numbered.push(format!("-{n}"));
        copy = PathBuf::from(numbered);
    }
    std::fs::copy(wal, &copy).map_err(StorageError::backend)?;
    File::open(&copy)
        .and_then(|file| file.sync_all())
        .map_err(StorageError::backend)?;
    Ok(copy)
}

#[cfg(test)]
mod tests;
