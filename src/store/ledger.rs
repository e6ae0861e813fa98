//! Ledger checkpoints, keys, ranges and balances: the store's types and `impl_ledger!`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// A signed checkpoint of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Checkpoint {
    pub checkpoint_id: String,
    pub kind: String,
    pub business_date: NaiveDate,
    pub gateway: String,
    pub last_seq: i64,
    pub head_hash: String,
    /// JSON object: account → [debit, credit], cumulative through `last_seq`.
    pub totals: String,
    pub created_at: DateTime<Utc>,
    pub public_key: String,
    pub signature: String,
}

pub(super) const CHECKPOINT_COLUMNS: &str =
    "checkpoint_id, kind, business_date, gateway, last_seq, head_hash, totals, created_at, public_key, signature";

/// Signs a checkpoint message; returns the signature in hex.
pub type Signer<'a> = dyn Fn(&[u8]) -> String + Send + Sync + 'a;

macro_rules! impl_ledger {
    ($store:ty, $db:ty, for_update = $for_update:literal) => {
        impl $store {
            async fn write_checkpoint_impl(
                &self,
                kind: &str,
                date: chrono::NaiveDate,
                gateway: &str,
                at: chrono::DateTime<chrono::Utc>,
                public_key: &str,
                sign: &$crate::store::ledger::Signer<'_>,
            ) -> $crate::store::Result<Option<$crate::store::ledger::Checkpoint>> {
                let at = $crate::domain::Timestamp::at(at).0;
                let mut tx = self.begin_write().await?;
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT checkpoint_id FROM ledger_checkpoints WHERE kind = $1 AND business_date = $2 AND gateway = $3")
                        .bind(kind)
                        .bind(date)
                        .bind(gateway)
                        .fetch_optional(&mut **tx)
                        .await?;
                if exists.is_some() {
                    return Ok(None);
                }
                // Holding the head's lock: no entry can be appended while the totals are summed.
                let (last_seq, head): (i64, String) =
                    sqlx::query_as(concat!("SELECT last_seq, last_hash FROM chain_heads WHERE chain = 'ledger'", $for_update))
                        .fetch_one(&mut **tx)
                        .await?;
                let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT account, CAST(COALESCE(SUM(debit), 0) AS BIGINT), CAST(COALESCE(SUM(credit), 0) AS BIGINT) FROM ledger_entries WHERE seq <= $1 GROUP BY account",
                )
                .bind(last_seq)
                .fetch_all(&mut **tx)
                .await?;
                let totals: $crate::domain::ledger::Totals = rows.into_iter().map(|(a, d, c)| (a, (d, c))).collect();
                let message = $crate::domain::ledger::checkpoint_message(kind, date, gateway, last_seq, &head, &totals, &at);
                let cp = $crate::store::ledger::Checkpoint {
                    checkpoint_id: $crate::domain::new_id("ckp"),
                    kind: kind.to_owned(),
                    business_date: date,
                    gateway: gateway.to_owned(),
                    last_seq,
                    head_hash: head,
                    totals: serde_json::to_string(&totals).unwrap_or_default(),
                    created_at: at,
                    public_key: public_key.to_owned(),
                    signature: sign(&message),
                };
                sqlx::query(
                    "INSERT INTO ledger_checkpoints (checkpoint_id, kind, business_date, gateway, last_seq, head_hash, totals, created_at, public_key, signature)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&cp.checkpoint_id)
                .bind(&cp.kind)
                .bind(cp.business_date)
                .bind(&cp.gateway)
                .bind(cp.last_seq)
                .bind(&cp.head_hash)
                .bind(&cp.totals)
                .bind(cp.created_at)
                .bind(&cp.public_key)
                .bind(&cp.signature)
                .execute(&mut **tx)
                .await
                .map_err(|e| $crate::store::common::on_unique(e, || "checkpoint exists".into()))?;
                tx.commit().await?;
                Ok(Some(cp))
            }
        }
    };
}

pub(super) use impl_ledger;
