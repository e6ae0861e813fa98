//! Imported settlement files (SPEC §7.1): their exact bytes and hash, and their lines in
//! canonical form. A file is imported once (its SHA-256 is unique); a file of a million lines is
//! written with multi-row statements, its lines naming it by the small `import_seq`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{PROGRESS_EVERY, Progress, Result, Store, StoreError, WriteTx, on_pool, on_tx, on_unique};
use crate::domain::Timestamp;
use crate::domain::payment::Gateway;
use crate::domain::recon::{Line, LineStatus};

/// An imported settlement file, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SettlementFile {
    pub file_id: String,
    /// Orders files by import: which of two equal lines comes first.
    pub import_seq: i64,
    pub gateway: Gateway,
    pub profile: String,
    pub name: String,
    pub sha256: String,
    pub line_count: i64,
    pub imported_at: DateTime<Utc>,
    pub imported_by: String,
}

pub(super) const FILE_COLUMNS: &str =
    "file_id, import_seq, gateway, profile, name, sha256, line_count, imported_at, imported_by";

/// A stored settlement line.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LineRow {
    pub file_id: String,
    pub line_no: i64,
    pub gateway_txn_no: String,
    pub txn_ref: String,
    pub amount: i64,
    pub fee: i64,
    pub txn_time: DateTime<Utc>,
    pub business_date: NaiveDate,
    pub status: LineStatus,
}

impl Store {
    /// Imported files, in import order (all gateways when `None`).
    pub async fn settlement_files(&self, gateway: Option<Gateway>) -> Result<Vec<SettlementFile>> {
        let sql =
            format!("SELECT {FILE_COLUMNS} FROM settlement_files WHERE ($1 = '' OR gateway = $1) ORDER BY import_seq");
        let g = gateway.map_or("", Gateway::as_str);
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(g).fetch_all(p).await)?)
    }

    /// Imported files in import order (all gateways when `None`), after the file `after`, at most
    /// `limit`.
    pub async fn settlement_files_page(
        &self,
        gateway: Option<Gateway>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SettlementFile>> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM settlement_files WHERE ($1 = '' OR gateway = $1)
               AND ($2 = '' OR import_seq > (SELECT a.import_seq FROM settlement_files a WHERE a.file_id = $2))
             ORDER BY import_seq LIMIT $3"
        );
        let g = gateway.map_or("", Gateway::as_str);
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(g).bind(after.unwrap_or("")).bind(limit).fetch_all(p).await)?)
    }

    /// A file with its exact bytes.
    pub async fn settlement_file_bytes(&self, file_id: &str) -> Result<Option<(SettlementFile, Vec<u8>)>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM settlement_files WHERE file_id = $1");
        let f: Option<SettlementFile> = on_pool!(self, |p| sqlx::query_as(&sql).bind(file_id).fetch_optional(p).await)?;
        let Some(f) = f else { return Ok(None) };
        let (bytes,): (Vec<u8>,) =
            on_pool!(self, |p| sqlx::query_as("SELECT bytes FROM settlement_files WHERE file_id = $1")
                .bind(file_id)
                .fetch_one(p)
                .await)?;
        Ok(Some((f, bytes)))
    }

    /// The first imported line of a gateway with this number and status.
    pub async fn settlement_line(
        &self,
        gateway: Gateway,
        gateway_txn_no: &str,
        status: LineStatus,
    ) -> Result<Option<LineRow>> {
        let sql = "SELECT f.file_id, l.line_no, l.gateway_txn_no, l.txn_ref, l.amount, l.fee, l.txn_time, l.business_date, l.status
                   FROM settlement_lines l JOIN settlement_files f ON f.import_seq = l.file_seq
                   WHERE l.gateway = $1 AND l.gateway_txn_no = $2 AND l.status = $3 ORDER BY l.file_seq, l.line_no LIMIT 1";
        Ok(on_pool!(self, |p| sqlx::query_as(sql)
            .bind(gateway)
            .bind(gateway_txn_no)
            .bind(status)
            .fetch_optional(p)
            .await)?)
    }
}

impl WriteTx {
    /// Writes a parsed file and its lines; a file whose SHA-256 was imported before is `Conflict`
    /// naming the earlier import. `progress` is called with the lines written so far.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_settlement_file(
        &mut self,
        gateway: Gateway,
        profile: &str,
        name: &str,
        bytes: &[u8],
        sha256: &str,
        lines: &[Line],
        imported_by: &str,
        at: DateTime<Utc>,
        progress: &Progress<'_>,
    ) -> Result<SettlementFile> {
        let at = Timestamp::at(at);
        let prior: Option<(String, Gateway, String, Timestamp)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT file_id, gateway, name, imported_at FROM settlement_files WHERE sha256 = $1"
        )
        .bind(sha256)
        .fetch_optional(&mut *c)
        .await)?;
        if let Some((id, gateway, name, when)) = prior {
            return Err(StoreError::Conflict(format!(
                "this file (sha256 {sha256}) was imported before for {gateway}, as {id} ({name:?}) at {when}"
            )));
        }
        let (seq,): (i64,) =
            on_tx!(self, |c| sqlx::query_as("SELECT COALESCE(MAX(import_seq), 0) + 1 FROM settlement_files")
                .fetch_one(&mut *c)
                .await)?;
        let file = SettlementFile {
            file_id: crate::domain::new_id("stf"),
            import_seq: seq,
            gateway,
            profile: profile.to_owned(),
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            line_count: i64::try_from(lines.len()).unwrap_or(i64::MAX),
            imported_at: at.0,
            imported_by: imported_by.to_owned(),
        };
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO settlement_files (file_id, import_seq, gateway, profile, name, sha256, bytes, line_count, imported_at, imported_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&file.file_id)
        .bind(file.import_seq)
        .bind(file.gateway)
        .bind(&file.profile)
        .bind(&file.name)
        .bind(&file.sha256)
        .bind(bytes)
        .bind(file.line_count)
        .bind(at)
        .bind(&file.imported_by)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected()))
        .map_err(|e| {
            on_unique(e, || {
                "this file was imported before, or another import was saved at the same moment; try again".into()
            })
        })?;
        let first = self.first_occurrences(gateway, lines).await?;
        let mut done = 0usize;
        for (chunk, first) in lines.chunks(1000).zip(first.chunks(1000)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO settlement_lines (file_seq, line_no, gateway, gateway_txn_no, txn_ref, amount, fee, txn_time, business_date, status, first_occurrence) ",
                );
                q.push_values(chunk.iter().zip(first), |mut b, (l, first)| {
                    b.push_bind(seq)
                        .push_bind(i64::try_from(l.line_no).unwrap_or(i64::MAX))
                        .push_bind(gateway)
                        .push_bind(&l.gateway_txn_no)
                        .push_bind(&l.txn_ref)
                        .push_bind(l.amount)
                        .push_bind(l.fee)
                        .push_bind(l.txn_time)
                        .push_bind(l.business_date())
                        .push_bind(l.status)
                        .push_bind(*first);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
            let before = done;
            done += chunk.len();
            if done / PROGRESS_EVERY != before / PROGRESS_EVERY {
                progress(done);
            }
        }
        if self.backend() == super::Backend::Postgres {
            // A line repeating a (gateway_txn_no, status) of an earlier file is not a first
            // occurrence (on SQLite, `first_occurrences` found those before the insert).
            on_tx!(self, |c| {
                sqlx::query(
                "UPDATE settlement_lines SET first_occurrence = $1 WHERE file_seq = $2 AND first_occurrence AND EXISTS (
                     SELECT 1 FROM settlement_lines e
                     WHERE e.gateway = settlement_lines.gateway AND e.gateway_txn_no = settlement_lines.gateway_txn_no
                       AND e.status = settlement_lines.status AND e.file_seq < settlement_lines.file_seq)"
            )
            .bind(false)
            .bind(seq)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
            })?;
        }
        Ok(file)
    }

    /// Whether each line (in `lines`' order) is the first of its (`gateway_txn_no`, status): by
    /// line number within the file, and, on SQLite, after every earlier file of the gateway,
    /// whose lines with numbers in the file's range are read (a gateway's numbers grow, so that
    /// range holds few earlier lines). Called before the file's lines are written.
    async fn first_occurrences(&mut self, gateway: Gateway, lines: &[Line]) -> Result<Vec<bool>> {
        let mut order: Vec<usize> = (0..lines.len()).collect();
        order.sort_by_key(|i| lines.get(*i).map_or(0, |l| l.line_no));
        let mut seen: rustc_hash::FxHashSet<(&str, LineStatus)> =
            rustc_hash::FxHashSet::with_capacity_and_hasher(lines.len(), Default::default());
        let mut first = vec![false; lines.len()];
        for i in order {
            if let (Some(l), Some(f)) = (lines.get(i), first.get_mut(i)) {
                *f = seen.insert((l.gateway_txn_no.as_str(), l.status));
            }
        }
        let (Some(low), Some(high)) = (
            lines.iter().map(|l| l.gateway_txn_no.as_str()).min(),
            lines.iter().map(|l| l.gateway_txn_no.as_str()).max(),
        ) else {
            return Ok(first);
        };
        if self.backend() != super::Backend::Sqlite {
            return Ok(first);
        }
        // The range's earlier lines, when it holds no more of them than the file has lines (a
        // gateway's numbers grow: the usual case); otherwise (a refund of an old transaction
        // widens the range to most of the history) each of the file's numbers is looked up
        // through the `(gateway, gateway_txn_no)` index. Either way what is read is bounded by
        // the file's size, whatever the history holds.
        let cap = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        let (in_range,): (i64,) = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM (SELECT 1 FROM settlement_lines
                 WHERE gateway = $1 AND gateway_txn_no >= $2 AND gateway_txn_no <= $3 LIMIT $4)",
            )
            .bind(gateway)
            .bind(low)
            .bind(high)
            .bind(cap.saturating_add(1))
            .fetch_one(&mut *c)
            .await
        })?;
        let earlier: Vec<(String, LineStatus)> = if in_range <= cap {
            on_tx!(self, |c| {
                sqlx::query_as(
                    "SELECT gateway_txn_no, status FROM settlement_lines
                     WHERE gateway = $1 AND gateway_txn_no >= $2 AND gateway_txn_no <= $3",
                )
                .bind(gateway)
                .bind(low)
                .bind(high)
                .fetch_all(&mut *c)
                .await
            })?
        } else {
            let mut numbers: Vec<&str> = lines.iter().map(|l| l.gateway_txn_no.as_str()).collect();
            numbers.sort_unstable();
            numbers.dedup();
            let numbers = serde_json::to_string(&numbers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            on_tx!(self, |c| {
                sqlx::query_as(
                    "SELECT gateway_txn_no, status FROM settlement_lines
                     WHERE gateway = $1 AND gateway_txn_no IN (SELECT value FROM json_each($2))",
                )
                .bind(gateway)
                .bind(&numbers)
                .fetch_all(&mut *c)
                .await
            })?
        };
        if earlier.is_empty() {
            return Ok(first);
        }
        let earlier: rustc_hash::FxHashSet<(&str, LineStatus)> =
            earlier.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        for (l, f) in lines.iter().zip(first.iter_mut()) {
            if earlier.contains(&(l.gateway_txn_no.as_str(), l.status)) {
                *f = false;
            }
        }
        Ok(first)
    }
}
