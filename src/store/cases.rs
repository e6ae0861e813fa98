//! Cases and their versions (SPEC §4.3): `cases` holds which version is current, `case_versions`
//! every version ever accepted. An identical update adds no version.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, Store, WriteTx, on_pool, on_tx};
use crate::domain::sql::JsonText;
use crate::domain::{Case, CaseCode, Channel, Fact, ProcedureCode, Subject, Timestamp, UnitCode};

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// A case as stored: its current content and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredCase {
    #[serde(flatten)]
    pub case: Case,
    pub version: i64,
    pub recorded_at: Timestamp,
}

/// How a case import went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(sqlx::FromRow)]
struct CaseVersionRow {
    case_code: CaseCode,
    version: i64,
    procedure_code: ProcedureCode,
    applicant_name: String,
    channel: Channel,
    subjects: JsonText<Vec<Subject>>,
    facts: JsonText<Vec<Fact>>,
    quantity: i64,
    received_at: Timestamp,
    receiving_unit: UnitCode,
    recorded_at: Timestamp,
}

const VERSION_COLUMNS: &str = "v.case_code, v.version, v.procedure_code, v.applicant_name, v.channel, v.subjects, \
                               v.facts, v.quantity, v.received_at, v.receiving_unit, v.recorded_at";

impl CaseVersionRow {
    fn into_stored(self) -> Result<StoredCase> {
        Ok(StoredCase {
            case: Case {
                case_code: self.case_code,
                procedure_code: self.procedure_code,
                applicant_name: self.applicant_name,
                channel: self.channel,
                subjects: self.subjects.0,
                facts: self.facts.0,
                quantity: u32::try_from(self.quantity)
                    .map_err(|e| super::StoreError::Corrupt(format!("case quantity: {e}")))?,
                received_at: self.received_at,
                receiving_unit: self.receiving_unit,
            },
            version: self.version,
            recorded_at: self.recorded_at,
        })
    }
}

impl Store {
    /// The current version of a case.
    pub async fn get_case(&self, code: &CaseCode) -> Result<Option<StoredCase>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM cases c JOIN case_versions v ON v.case_code = c.case_code AND v.version = c.current_version
             WHERE c.case_code = $1"
        );
        let row: Option<CaseVersionRow> = on_pool!(self, |p| sqlx::query_as(&sql).bind(code).fetch_optional(p).await)?;
        row.map(CaseVersionRow::into_stored).transpose()
    }

    /// Every version of a case, oldest first.
    pub async fn case_versions(&self, code: &CaseCode) -> Result<Vec<StoredCase>> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM case_versions v WHERE v.case_code = $1 ORDER BY v.version");
        let rows: Vec<CaseVersionRow> = on_pool!(self, |p| sqlx::query_as(&sql).bind(code).fetch_all(p).await)?;
        rows.into_iter().map(CaseVersionRow::into_stored).collect()
    }

    /// Creates the case, or adds a version when its content differs from the current one.
    pub async fn upsert_case(&self, case: &Case, actor: &str, at: DateTime<Utc>) -> Result<(Upserted, StoredCase)> {
        let mut tx = self.write().await?;
        let out = tx.upsert_case(case, actor, at).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// What an import did to one case: created, updated (to `version`) or unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    pub case_code: CaseCode,
    pub result: Upserted,
    /// The version current after the import.
    pub version: i64,
}

impl ImportCounts {
    pub fn of(outcomes: &[CaseOutcome]) -> Self {
        let mut c = Self::default();
        for o in outcomes {
            match o.result {
                Upserted::Created => c.created += 1,
                Upserted::Updated => c.updated += 1,
                Upserted::Unchanged => c.unchanged += 1,
            }
        }
        c
    }
}

impl WriteTx {
    /// Upserts every case (see `upsert_case`) in this transaction, saying what each became.
    pub async fn import_cases(
        &mut self,
        cases: &[Case],
        actor: &str,
        at: DateTime<Utc>,
        progress: &super::Progress<'_>,
    ) -> Result<Vec<CaseOutcome>> {
        let mut out = Vec::with_capacity(cases.len());
        for (i, case) in cases.iter().enumerate() {
            if i > 0 && i % super::PROGRESS_EVERY == 0 {
                progress(i);
            }
            let (result, stored) = self.upsert_case(case, actor, at).await?;
            out.push(CaseOutcome { case_code: case.case_code.clone(), result, version: stored.version });
        }
        Ok(out)
    }

    /// Upserts one case (see `Store::upsert_case`), holding its row.
    pub async fn upsert_case(&mut self, case: &Case, actor: &str, at: DateTime<Utc>) -> Result<(Upserted, StoredCase)> {
        let at = Timestamp::at(at);
        let code = &case.case_code;
        let inserted = on_tx!(self, |c| sqlx::query(
            "INSERT INTO cases (case_code, current_version, created_at, updated_at) VALUES ($1, 1, $2, $2)
             ON CONFLICT (case_code) DO NOTHING",
        )
        .bind(code)
        .bind(at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?
            == 1;
        let version = if inserted {
            1
        } else {
            let lock = format!("SELECT current_version FROM cases WHERE case_code = $1{}", self.for_update());
            let (current,): (i64,) = on_tx!(self, |c| sqlx::query_as(&lock).bind(code).fetch_one(&mut *c).await)?;
            let sql =
                format!("SELECT {VERSION_COLUMNS} FROM case_versions v WHERE v.case_code = $1 AND v.version = $2");
            let row: CaseVersionRow =
                on_tx!(self, |c| sqlx::query_as(&sql).bind(code).bind(current).fetch_one(&mut *c).await)?;
            let stored = row.into_stored()?;
            if &stored.case == case {
                return Ok((Upserted::Unchanged, stored));
            }
            on_tx!(self, |c| sqlx::query(
                "UPDATE cases SET current_version = $1, updated_at = $2 WHERE case_code = $3"
            )
            .bind(current + 1)
            .bind(at)
            .bind(code)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
            current + 1
        };
        let subjects = JsonText(case.subjects.clone());
        let facts = JsonText(case.facts.clone());
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO case_versions (case_code, version, procedure_code, applicant_name, channel, subjects,
                                        quantity, received_at, receiving_unit, recorded_at, recorded_by, facts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(code)
        .bind(version)
        .bind(&case.procedure_code)
        .bind(&case.applicant_name)
        .bind(case.channel)
        .bind(&subjects)
        .bind(i64::from(case.quantity))
        .bind(case.received_at)
        .bind(&case.receiving_unit)
        .bind(at)
        .bind(actor)
        .bind(&facts)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        let stored = StoredCase { case: case.clone(), version, recorded_at: at };
        Ok((if inserted { Upserted::Created } else { Upserted::Updated }, stored))
    }

    /// Locks the rows of these cases for the rest of the transaction, in code order (so two
    /// instances locking overlapping sets never wait on each other in a cycle). Returns the codes
    /// that exist.
    pub async fn lock_cases(&mut self, codes: &[&str]) -> Result<Vec<String>> {
        if codes.is_empty() {
            return Ok(vec![]);
        }
        let lock = self.for_update();
        let rows: Vec<(String,)> = on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new("SELECT case_code FROM cases WHERE case_code IN (");
            let mut list = q.separated(", ");
            for code in codes {
                list.push_bind(*code);
            }
            q.push(") ORDER BY case_code");
            q.push(lock);
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }
}

impl Store {
    /// How many cases are known, for `/metrics`.
    pub async fn case_count(&self) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, |p| sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(p).await)?;
        Ok(n)
    }
}
