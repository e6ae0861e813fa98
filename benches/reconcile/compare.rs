//! The yardsticks: the same classification over the same CSVs in DuckDB (SQL) and in pandas,
//! timed inside Python from reading the files to the classified items, each answering its
//! seconds and its count per category (which the benchmark checks against ours).
//! `FEERECON_BENCH_PYTHON` names the interpreter (`benches/run.sh` sets its venv's).

use std::collections::BTreeMap;
use std::path::Path;

const DUCKDB: &str = r#"
import duckdb, json, sys, time
d = sys.argv[1]
con = duckdb.connect()
t = time.perf_counter()
con.execute(f"CREATE TABLE p AS SELECT * FROM read_csv('{d}/payments.csv', header=true, types={{'gateway_txn_no':'VARCHAR'}})")
con.execute(f"CREATE TABLE l AS SELECT *, row_number() OVER () AS line_no FROM read_csv('{d}/lines.csv', header=true, types={{'gateway_txn_no':'VARCHAR'}})")
con.execute('''CREATE TABLE lf AS SELECT *, row_number() OVER (PARTITION BY gateway_txn_no, status ORDER BY line_no) AS occ FROM l''')
con.execute('''CREATE TABLE items AS
  SELECT lf.gateway_txn_no, lf.txn_ref, p.payment_id, lf.amount AS settled, p.amount AS recorded,
    CASE WHEN occ > 1 THEN 'duplicate_settlement_line' WHEN lf.status = 'refund' THEN 'refund'
         WHEN p.payment_id IS NULL THEN 'missing_in_records' WHEN p.status <> 'paid' THEN 'unconfirmed_in_records'
         WHEN p.duplicate OR p.gateway_txn_no <> lf.gateway_txn_no THEN 'duplicate_payment' WHEN lf.amount <> p.amount THEN 'amount_mismatch'
         WHEN p.expected <> p.amount THEN 'fee_mismatch' ELSE 'matched' END AS category
  FROM lf LEFT JOIN p ON p.txn_ref = lf.txn_ref
  UNION ALL
  SELECT NULL, p.txn_ref, p.payment_id, NULL, p.amount, CASE WHEN p.duplicate THEN 'duplicate_payment' ELSE 'missing_in_settlement' END
  FROM p WHERE p.status = 'paid' AND NOT EXISTS (SELECT 1 FROM l WHERE l.txn_ref = p.txn_ref AND l.status = 'success')''')
counts = dict(con.execute("SELECT category, count(*) FROM items GROUP BY category").fetchall())
secs = time.perf_counter() - t
print(json.dumps({"secs": secs, "counts": counts, "version": duckdb.__version__}))
"#;

const PANDAS: &str = r#"
import json, sys, time
import numpy as np, pandas as pd
d = sys.argv[1]
t = time.perf_counter()
p = pd.read_csv(f"{d}/payments.csv", dtype={"gateway_txn_no": str})
l = pd.read_csv(f"{d}/lines.csv", dtype={"gateway_txn_no": str})
l["occ"] = l.groupby(["gateway_txn_no", "status"], sort=False).cumcount() + 1
m = l.merge(p, on="txn_ref", how="left", suffixes=("", "_p"))
dup = m["duplicate"].fillna(False).astype(bool)
cat = np.select(
    [m["occ"] > 1, m["status"] == "refund", m["payment_id"].isna(), m["status_p"] != "paid",
     dup | (m["gateway_txn_no_p"] != m["gateway_txn_no"]), m["amount"] != m["amount_p"], m["expected"] != m["amount_p"]],
    ["duplicate_settlement_line", "refund", "missing_in_records", "unconfirmed_in_records",
     "duplicate_payment", "amount_mismatch", "fee_mismatch"],
    "matched",
)
settled = l.loc[l["status"] == "success", "txn_ref"]
missing = p[(p["status"] == "paid") & ~p["txn_ref"].isin(settled)]
cat2 = np.where(missing["duplicate"].astype(bool), "duplicate_payment", "missing_in_settlement")
counts = pd.Series(np.concatenate([cat, cat2])).value_counts()
secs = time.perf_counter() - t
print(json.dumps({"secs": secs, "counts": {k: int(v) for k, v in counts.items()}, "version": pd.__version__}))
"#;

/// What a yardstick answered.
pub struct Answer {
    pub secs: f64,
    pub counts: BTreeMap<String, usize>,
    pub version: String,
}

fn run(name: &str, script: &str, dir: &Path) -> Option<Answer> {
    let python = std::env::var("FEERECON_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python).arg("-c").arg(script).arg(dir).output().ok()?;
    if !out.status.success() {
        eprintln!("{name}: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(Answer {
        secs: v["secs"].as_f64()?,
        counts: v["counts"]
            .as_object()?
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0)))
            .collect(),
        version: v["version"].as_str().unwrap_or("?").to_owned(),
    })
}

pub fn duckdb(dir: &Path) -> Option<Answer> {
    run("duckdb", DUCKDB, dir)
}

pub fn pandas(dir: &Path) -> Option<Answer> {
    run("pandas", PANDAS, dir)
}
