//! `notes`: notes kept in the actor's SQL database, with a full-text index to search them.

use footlights::prelude::*;
use footlights::{ActorOptions, Migration};

/// The longest note, in characters.
pub const MAX_NOTE_LENGTH: usize = 10_000;
/// The most notes one search returns (the newest matches first).
pub const SEARCH_LIMIT: usize = 100;

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// Its id, from 1, never reused.
    pub id: i64,
    /// Its text.
    pub text: String,
    /// When it was added, in milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Notes in a table of the actor's database (`ctx.db()`), searchable by word through an FTS5
/// index that triggers keep in step. The state holds nothing: every note is a row, so the
/// actor holds as many as its database allows and each change writes only the pages it
/// touches.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Notes {}

/// The schema, one step per version.
fn migrations() -> Vec<Migration> {
    vec![Migration::new(
        1,
        "CREATE TABLE notes ( \
             id INTEGER PRIMARY KEY AUTOINCREMENT, \
             text TEXT NOT NULL, \
             created_at INTEGER NOT NULL); \
         CREATE VIRTUAL TABLE notes_fts USING fts5(text, content = 'notes', content_rowid = 'id'); \
         CREATE TRIGGER notes_added AFTER INSERT ON notes BEGIN \
             INSERT INTO notes_fts (rowid, text) VALUES (new.id, new.text); \
         END; \
         CREATE TRIGGER notes_deleted AFTER DELETE ON notes BEGIN \
             INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', old.id, old.text); \
         END;",
    )]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[footlights::actor(name = "notes")]
impl Notes {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.db_migrations = migrations();
        o
    }

    /// Adds a note; answers its id. Refuses an empty note or one over
    /// [`MAX_NOTE_LENGTH`] characters with `user.invalid_note`.
    #[action]
    pub async fn add_note(&self, ctx: &Ctx<Self>, text: String) -> Result<i64, ActionError> {
        let length = text.chars().count();
        if text.trim().is_empty() || length > MAX_NOTE_LENGTH {
            return Err(ActionError::user(
                "invalid_note",
                format!("a note has 1 to {MAX_NOTE_LENGTH} characters; this one has {length}"),
            ));
        }
        ctx.db()
            .query_first(
                "INSERT INTO notes (text, created_at) VALUES (?1, ?2) RETURNING id",
                (text, now_ms()),
            )
            .await?
            .ok_or_else(|| ActionError::internal("the insert returned no id"))
    }

    /// The notes that contain `word` (whole words, any case), newest first, at most
    /// [`SEARCH_LIMIT`]. Several words find notes with all of them.
    #[action]
    pub async fn search(&self, ctx: &Ctx<Self>, word: String) -> Result<Vec<Note>, ActionError> {
        // Each word as a quoted FTS5 string: what a client types is never query syntax.
        let query: Vec<String> = word
            .split_whitespace()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        ctx.db()
            .query(
                "SELECT notes.id, notes.text, notes.created_at AS createdAt \
                 FROM notes_fts JOIN notes ON notes.id = notes_fts.rowid \
                 WHERE notes_fts MATCH ?1 ORDER BY notes.id DESC LIMIT ?2",
                (query.join(" "), SEARCH_LIMIT as i64),
            )
            .await
    }

    /// How many notes there are.
    #[action]
    pub async fn count(&self, ctx: &Ctx<Self>) -> Result<i64, ActionError> {
        Ok(ctx
            .db()
            .query_first("SELECT count(*) FROM notes", ())
            .await?
            .unwrap_or(0))
    }

    /// Deletes note `id`; answers whether there was one.
    #[action]
    pub async fn delete_note(&self, ctx: &Ctx<Self>, id: i64) -> Result<bool, ActionError> {
        let changed = ctx
            .db()
            .execute("DELETE FROM notes WHERE id = ?1", (id,))
            .await?;
        Ok(changed > 0)
    }
}
