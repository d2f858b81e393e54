//! The inspector's view of an actor's database: its tables with their row counts, and a page
//! of one table's rows, read through the actor's own connection between two messages.

use footlights_protocol::ActionError;
use rusqlite::types::Value as SqlValue;

use super::Db;
use crate::inspect::{DbRowsView, DbTableView, DbView};

/// The most rows one page shows.
pub(crate) const MAX_PAGE: usize = 200;

/// What the inspector asked for: the tables, and a page of `table`'s rows if given.
pub(crate) async fn view(
    db: Db<'_>,
    table: Option<String>,
    offset: u64,
    limit: usize,
) -> Result<DbView, ActionError> {
    let limit = limit.clamp(1, MAX_PAGE);
    db.with_conn(move |conn| {
        let sql = |e: rusqlite::Error| super::sql_error(e);
        let mut tables = Vec::new();
        {
            let mut stmt = conn
                .prepare(
                    "SELECT name, type FROM sqlite_schema
                     WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'
                     ORDER BY name",
                )
                .map_err(sql)?;
            let names = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            for (name, kind) in names {
                let rows: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM {}", quoted(&name)),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(sql)?;
                tables.push(DbTableView {
                    name,
                    kind,
                    rows: u64::try_from(rows).unwrap_or(0),
                });
            }
        }
        let rows = match table {
            None => None,
            Some(name) => {
                // Only a name the schema lists is put into SQL, and quoted as a name.
                if !tables.iter().any(|t| t.name == name) {
                    return Err(ActionError::new(
                        "db",
                        "no_such_table",
                        format!("the database has no table {name:?}"),
                    ));
                }
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT * FROM {} LIMIT ?1 OFFSET ?2",
                        quoted(&name)
                    ))
                    .map_err(sql)?;
                let columns: Vec<String> = stmt
                    .column_names()
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect();
                let offset_sql = i64::try_from(offset).unwrap_or(i64::MAX);
                let mut rows = Vec::new();
                let mut cursor = stmt
                    .query(rusqlite::params![limit as i64 + 1, offset_sql])
                    .map_err(sql)?;
                while let Some(row) = cursor.next().map_err(sql)? {
                    let mut values = Vec::with_capacity(columns.len());
                    for i in 0..columns.len() {
                        values.push(super::to_value(&row.get::<_, SqlValue>(i).map_err(sql)?));
                    }
                    rows.push(values);
                }
                let more = rows.len() > limit;
                rows.truncate(limit);
                Some(DbRowsView {
                    table: name,
                    columns,
                    rows,
                    offset,
                    more,
                })
            }
        };
        Ok(DbView { tables, rows })
    })
    .await
}

/// `name` as an SQL identifier: in double quotes, its own double quotes doubled.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_as_identifiers() {
        assert_eq!(quoted("notes"), "\"notes\"");
        assert_eq!(quoted("a\"b; DROP TABLE x"), "\"a\"\"b; DROP TABLE x\"");
    }
}
