use super::*;

/// A store in memory that takes changes the way an owner would.
#[derive(Default)]
struct MapStore {
    chunks: Mutex<BTreeMap<u64, Vec<u8>>>,
    len: Mutex<u64>,
    reads: AtomicU64,
}

impl MapStore {
    fn apply(&self, c: Changes) {
        let mut chunks = self.chunks.lock().unwrap();
        if let Some(from) = c.truncate_from {
            chunks.retain(|i, _| *i < from);
        }
        for (i, bytes) in c.chunks {
            assert!(bytes.len() <= CHUNK);
            chunks.insert(i, bytes);
        }
        if let Some(len) = c.len {
            *self.len.lock().unwrap() = len;
        }
    }
}

impl PageStore for MapStore {
    fn read_chunk(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.chunks.lock().unwrap().get(&index).cloned())
    }

    fn saved_len(&self) -> Result<u64, StoreError> {
        Ok(*self.len.lock().unwrap())
    }
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn committed_changes_survive_a_new_connection_and_only_they_do() {
    let store = Arc::new(MapStore::default());
    let file = DbFile::new(store.clone());
    let conn = file.open(1 << 20).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    for i in 0..500 {
        conn.execute("INSERT INTO t (body) VALUES (?1)", [format!("row {i}")])
            .unwrap();
    }
    assert!(file.has_changes());
    let changes = file.take_changes();
    assert!(!changes.chunks.is_empty());
    assert_eq!(changes.len, Some(file.len().unwrap()));
    store.apply(changes);
    assert!(!file.has_changes());

    // Writes after the take that are then discarded are gone for a new connection.
    conn.execute("INSERT INTO t (body) VALUES ('lost')", [])
        .unwrap();
    drop(conn);
    file.discard_changes();
    let conn = file.open(1 << 20).unwrap();
    assert_eq!(count(&conn), 500);
    drop(conn);

    // A different file over the same store sees the same database.
    let other = DbFile::new(store.clone());
    let conn = other.open(1 << 20).unwrap();
    assert_eq!(count(&conn), 500);
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "memory");
}

#[test]
fn rollback_restores_the_pages_in_the_same_take() {
    let store = Arc::new(MapStore::default());
    let file = DbFile::new(store.clone());
    // A small cache, so the big transaction spills pages to the file before it rolls back.
    let mut conn = file.open(64 * 1024).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    conn.execute("INSERT INTO t (body) VALUES ('kept')", [])
        .unwrap();
    let tx = conn.transaction().unwrap();
    for _ in 0..2000 {
        tx.execute("INSERT INTO t (body) VALUES (?1)", ["x".repeat(200)])
            .unwrap();
    }
    tx.rollback().unwrap();
    assert_eq!(count(&conn), 1);
    store.apply(file.take_changes());
    drop(conn);
    let conn = DbFile::new(store).open(1 << 20).unwrap();
    assert_eq!(count(&conn), 1);
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn vacuum_shrinks_the_stored_file() {
    let store = Arc::new(MapStore::default());
    let file = DbFile::new(store.clone());
    let conn = file.open(1 << 20).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    for _ in 0..1000 {
        conn.execute("INSERT INTO t (body) VALUES (?1)", ["y".repeat(300)])
            .unwrap();
    }
    store.apply(file.take_changes());
    let big = store.chunks.lock().unwrap().len();
    conn.execute_batch("DELETE FROM t WHERE id > 10; VACUUM;")
        .unwrap();
    let changes = file.take_changes();
    assert!(changes.truncate_from.is_some(), "{changes:?}");
    store.apply(changes);
    let small = store.chunks.lock().unwrap().len();
    assert!(small < big / 4, "{small} chunks left of {big}");
    assert_eq!(
        *store.len.lock().unwrap(),
        small as u64 * CHUNK as u64,
        "the length matches the chunks kept"
    );
    drop(conn);
    let conn = DbFile::new(store).open(1 << 20).unwrap();
    assert_eq!(count(&conn), 10);
}

#[test]
fn unaligned_reads_and_writes_go_chunk_by_chunk() {
    let store = Arc::new(MapStore::default());
    let file = DbFile::new(store.clone());
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    file.write(100, &data).unwrap();
    assert_eq!(file.len().unwrap(), 10_100);
    store.apply(file.take_changes());
    let file = DbFile::new(store.clone());
    let mut buf = vec![0u8; 5000];
    assert_eq!(file.read(2000, &mut buf).unwrap(), 5000);
    assert_eq!(&buf[..], &data[1900..6900]);
    let mut tail = vec![0u8; 500];
    assert_eq!(
        file.read(10_000, &mut tail).unwrap(),
        100,
        "a short read at the end"
    );
    file.truncate(5000).unwrap();
    let c = file.take_changes();
    assert_eq!(c.truncate_from, Some(2));
    assert_eq!(c.chunks, vec![(1, data[3996..4900].to_vec())]);
    assert_eq!(c.len, Some(5000));
}

#[test]
fn the_page_cache_keeps_warm_reads_off_the_store() {
    let store = Arc::new(MapStore::default());
    let file = DbFile::new(store.clone());
    let conn = file.open(4 << 20).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
         INSERT INTO t (body) SELECT 'row ' || i FROM n;",
    )
    .unwrap();
    store.apply(file.take_changes());
    let before = store.reads.load(Ordering::Relaxed);
    for _ in 0..2 {
        for i in 1..100 {
            let body: String = conn
                .query_row("SELECT body FROM t WHERE id = ?1", [i * 50], |r| r.get(0))
                .unwrap();
            assert_eq!(body, format!("row {}", i * 50));
        }
    }
    // Without the cache each lookup reads two or three pages (about 500 reads); with it, the
    // pages stay in memory. A few reads are allowed: SQLite may look at the header again.
    let reads = store.reads.load(Ordering::Relaxed) - before;
    assert!(
        reads < 20,
        "{reads} reads from the store for 198 warm lookups"
    );
}
