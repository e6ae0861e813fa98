//! The day's books through the API: the gateways' settlement files (written by the simulator in
//! each gateway's profile format, with the scenario's wrong lines) imported and reconciled; the
//! exceptions resolved by two finance officers (four eyes); the clock moved past midnight; the
//! next day's file, the re-runs and the closes; the ledger exported and verified offline.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;

use crate::domain::Clock as _;
use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::day::Played;
use super::scenario::{Scenario, Script};
use super::{Ctx, say};
use crate::domain::payment::Gateway;
use crate::simulator::Discrepancies;

/// One settlement file imported.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub gateway: Gateway,
    pub name: String,
    pub lines: usize,
    pub sha256: String,
}

/// One exception's resolution.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolved {
    pub key: String,
    pub gateway: Gateway,
    pub category: String,
    pub action: String,
    /// The exception's state once done (`resolved`).
    pub state: String,
    pub approved_by_second_officer: bool,
}

/// What the books did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Books {
    pub files: Vec<Imported>,
    /// Exceptions of the first run, per gateway.
    pub first_run_exceptions: BTreeMap<Gateway, usize>,
    pub resolved: Vec<Resolved>,
    /// Whether the payment whose line came in the next day's file is matched on the re-run.
    pub late_line_matched: bool,
    /// The code the server gave an officer approving her own resolution.
    pub self_approval: Option<String>,
    pub export_dir: PathBuf,
    /// The offline verification of the export: entries, first and last seq, signed checkpoints.
    pub export_entries: i64,
    pub export_seq: (i64, i64),
    pub export_checkpoints: usize,
    pub public_key: String,
}

/// The scenario's wrong lines, per gateway, by the payments' references.
fn discrepancies(s: &Scenario, p: &Played) -> BTreeMap<Gateway, Discrepancies> {
    let r = |i: Option<usize>, g: Gateway| i.and_then(|i| p.paid_of(i, g)).and_then(|m| m.txn_ref.clone());
    let st = &s.settlement;
    let mut out = BTreeMap::new();
    out.insert(
        Gateway::Vnpay,
        Discrepancies {
            duplicated: r(st.doubled, Gateway::Vnpay).into_iter().collect(),
            missing: r(st.missing, Gateway::Vnpay).into_iter().collect(),
            extra: st.strangers,
            ..Discrepancies::default()
        },
    );
    out.insert(
        Gateway::Momo,
        Discrepancies {
            wrong_amount: r(st.short, Gateway::Momo).map(|t| (t, -500)).into_iter().collect(),
            refunds: r(st.refunded, Gateway::Momo).into_iter().collect(),
            ..Discrepancies::default()
        },
    );
    out.insert(
        Gateway::Zalopay,
        Discrepancies { next_day: r(st.late, Gateway::Zalopay).into_iter().collect(), ..Discrepancies::default() },
    );
    out
}

/// Writes `gateway`'s file of `date` into the demo folder and imports it; `None` for a file with
/// no line (nothing to import).
async fn settle(
    ctx: &Ctx,
    gateway: Gateway,
    date: chrono::NaiveDate,
    d: &Discrepancies,
) -> anyhow::Result<Option<Imported>> {
    let f = ctx.sim.day_file(gateway, date, None, d).map_err(|e| anyhow::anyhow!("the simulator's file: {e}"))?;
    if f.lines == 0 {
        return Ok(None);
    }
    let folder = ctx.dir.join("settlement");
    std::fs::create_dir_all(&folder).with_context(|| format!("{}: cannot create", folder.display()))?;
    std::fs::write(folder.join(&f.name), &f.bytes).with_context(|| format!("cannot write {}", f.name))?;
    let path = format!("/api/v1/settlements?gateway={gateway}&profile={}&name={}", f.profile, f.name);
    let (status, body) = ctx.api.bytes(Method::POST, &path, &ctx.people.lan, Some(f.bytes)).await?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 201 {
        bail!("importing {}: {status} {v}", f.name);
    }
    let lines = v["lines"].as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(f.lines);
    let sha256 = v["sha256"].as_str().unwrap_or_default().to_owned();
    let plural = if lines == 1 { "line" } else { "lines" };
    say(format!(
        "  {}: {lines} {plural} in {}'s format, imported (sha256 {}…)",
        f.name,
        f.profile,
        &sha256[..sha256.len().min(16)]
    ));
    Ok(Some(Imported { gateway, name: f.name, lines, sha256 }))
}

/// `POST /api/v1/reconciliations` for the day and `gateway`: the report.
async fn reconcile(ctx: &Ctx, gateway: Gateway) -> anyhow::Result<Value> {
    let body = json!({"date": ctx.date.to_string(), "gateway": gateway});
    ctx.api.ok(Method::POST, "/api/v1/reconciliations", &ctx.people.lan, Some(&body)).await
}

/// The report's exceptions still waiting for a person, in the order of the categories of SPEC
/// §7.2 (keys hold the gateways' numbers, which change from run to run).
fn open_items(report: &Value) -> Vec<Value> {
    let rank = |i: &Value| {
        let c = i["category"].as_str().unwrap_or_default();
        crate::domain::recon::Category::ALL.iter().position(|k| k.as_str() == c).unwrap_or(usize::MAX)
    };
    let mut items: Vec<Value> = report["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["state"] == "open" || i["state"] == "pending_approval")
        .cloned()
        .collect();
    items.sort_by_key(|i| (rank(i), i["key"].as_str().unwrap_or_default().to_owned()));
    items
}

/// The action a finance officer takes on an exception, and why; `None` to wait for the next
/// day's file.
fn decide(item: &Value, late_payment: Option<&str>) -> Option<(&'static str, &'static str)> {
    let settled = item["settled_amount"].as_i64().unwrap_or(0);
    let recorded = item["recorded_amount"].as_i64().unwrap_or(0);
    Some(match item["category"].as_str().unwrap_or_default() {
        "duplicate_settlement_line" => ("accept", "the gateway listed the line twice; it was paid once"),
        "refund" => ("refund", "the gateway refunded the citizen on the day"),
        "missing_in_records" => ("refund", "money for no case of ours: returned to the payer"),
        "unconfirmed_in_records" => {
            ("confirm_from_settlement", "the gateway settled it; its callbacks named another amount")
        }
        "duplicate_payment" => ("refund", "the case was paid twice; the second payment goes back"),
        "amount_mismatch" if settled < recorded => {
            ("write_off", "the gateway settled less; the difference is given up")
        }
        "amount_mismatch" => ("refund", "the gateway settled more; the difference goes back"),
        "fee_mismatch" => ("refund", "the case was corrected after payment; the excess goes back"),
        "missing_in_settlement" if item["payment_id"].as_str() == late_payment => return None,
        "missing_in_settlement" => ("accept", "the gateway confirms the payment; it will settle it later"),
        _ => return None,
    })
}

/// Resolves a report's open exceptions: `lan` decides, `minh` approves what moves money.
async fn resolve(
    ctx: &Ctx,
    gateway: Gateway,
    report: &Value,
    late: Option<&str>,
    books: &mut Books,
) -> anyhow::Result<()> {
    for item in open_items(report) {
        let key = item["key"].as_str().context("an item has a key")?.to_owned();
        let category = item["category"].as_str().unwrap_or_default().to_owned();
        let Some((action, note)) = decide(&item, late) else {
            say(format!("    {category} {key}: left open, the next day's file should bring its line"));
            continue;
        };
        let mut body = json!({"action": action, "note": note});
        if action == "confirm_from_settlement" && item["case_code"].is_string() {
            body["case_code"] = item["case_code"].clone();
        }
        let path = format!("/api/v1/exceptions/{key}");
        let e = ctx.api.ok(Method::POST, &format!("{path}/resolve"), &ctx.people.lan, Some(&body)).await?;
        let mut approved = false;
        let mut state = e["state"].as_str().unwrap_or_default().to_owned();
        if state == "pending_approval" {
            if books.self_approval.is_none() {
                let own = ctx
                    .api
                    .call(Method::POST, &format!("{path}/approve"), &ctx.people.lan, Some(&json!({})), None)
                    .await?;
                let code = own.error_code().unwrap_or("none").to_owned();
                if own.status != 403 {
                    bail!("an officer approved her own resolution: {} {}", own.status, own.body);
                }
                say(format!("    lan tries to approve her own resolution: {} {code}", own.status));
                books.self_approval = Some(code);
            }
            let e = ctx.api.ok(Method::POST, &format!("{path}/approve"), &ctx.people.minh, Some(&json!({}))).await?;
            state = e["state"].as_str().unwrap_or_default().to_owned();
            approved = true;
        }
        say(format!(
            "    {category}: lan {action}{} → {state} ({note})",
            if approved { ", minh approves" } else { "" }
        ));
        books.resolved.push(Resolved {
            key,
            gateway,
            category,
            action: action.to_owned(),
            state,
            approved_by_second_officer: approved,
        });
    }
    Ok(())
}

/// Settles, reconciles, resolves, closes the day and verifies the ledger's export.
pub async fn close_the_day(ctx: &Ctx, s: &Scenario, p: &Played) -> anyhow::Result<Books> {
    let mut books = Books {
        files: Vec::new(),
        first_run_exceptions: BTreeMap::new(),
        resolved: Vec::new(),
        late_line_matched: false,
        self_approval: None,
        export_dir: ctx.dir.join(format!("ledger-export-{}", ctx.date)),
        export_entries: 0,
        export_seq: (0, 0),
        export_checkpoints: 0,
        public_key: String::new(),
    };
    let late = s.settlement.late.and_then(|i| p.paid_of(i, Gateway::Zalopay)).map(|m| m.payment_id.clone());
    say(format!("settlement files of {}, as the gateways send them:", ctx.date));
    for (gateway, d) in discrepancies(s, p) {
        books.files.extend(settle(ctx, gateway, ctx.date, &d).await?);
    }
    say("reconciliation, and the exceptions resolved by two finance officers (lan decides, minh approves):");
    for gateway in super::GATEWAYS {
        let report = reconcile(ctx, *gateway).await?;
        let open = open_items(&report);
        books.first_run_exceptions.insert(*gateway, open.len());
        say(format!("  {gateway}: {} exceptions", open.len()));
        resolve(ctx, *gateway, &report, late.as_deref(), &mut books).await?;
    }

    // Past midnight: the day is over, the next day's files arrive, the day is re-run and closed.
    let midnight = super::at(ctx.date.succ_opt().context("the date has a next day")?, 0, 5)?;
    ctx.clock.advance(midnight - ctx.clock.now());
    // The date is over: its end-of-day checkpoint, as the ledger's worker writes it.
    ctx.ledger.end_of_days().await.context("the end-of-day checkpoint")?;
    say(format!(
        "the clock moves past midnight ({}); the next day's files arrive:",
        crate::domain::Timestamp::at(midnight)
    ));
    let next = ctx.date.succ_opt().context("the date has a next day")?;
    for gateway in super::GATEWAYS {
        books.files.extend(settle(ctx, *gateway, next, &Discrepancies::default()).await?);
    }
    for gateway in super::GATEWAYS {
        let report = reconcile(ctx, *gateway).await?;
        let left = open_items(&report);
        if !left.is_empty() {
            bail!("{gateway}: exceptions still open after the re-run: {}", Value::Array(left));
        }
        let closed = ctx
            .api
            .call(
                Method::POST,
                &format!("/api/v1/days/{}/close", ctx.date),
                &ctx.people.lan,
                Some(&json!({"gateway": gateway})),
                None,
            )
            .await?;
        if closed.status != 200 {
            bail!("closing {} {gateway}: {} {}", ctx.date, closed.status, closed.body);
        }
        say(format!("  {gateway}: re-run, nothing left open; {} closed and posted", ctx.date));
    }
    let matched = ctx
        .api
        .all(&format!("/api/v1/reconciliations/{}/items?gateway=zalopay&category=matched", ctx.date), &ctx.people.lan)
        .await?;
    books.late_line_matched = late.is_some_and(|l| matched.iter().any(|i| i["payment_id"].as_str() == Some(&l)));
    // The abandoned payments end once their TTL is past: the gateway reports its order expired
    // (a failure), or nobody answers and feerecon expires them.
    for m in p.payments.iter().filter(|m| matches!(s.cases[m.case].script, Script::Abandon { .. })) {
        super::day::wait_for_any(ctx, &m.payment_id, &["failed", "expired"]).await?;
    }
    export_and_verify(ctx, &mut books).await?;
    Ok(books)
}

/// `GET /api/v1/ledger/export` for the day, unpacked into the demo folder and verified offline
/// against the public key the API gives, as an auditor would.
async fn export_and_verify(ctx: &Ctx, books: &mut Books) -> anyhow::Result<()> {
    let d = ctx.date;
    let (status, zip) =
        ctx.api.bytes(Method::GET, &format!("/api/v1/ledger/export?from={d}&to={d}"), &ctx.people.lan, None).await?;
    if status != 200 {
        bail!("the ledger export: {status} {}", String::from_utf8_lossy(&zip));
    }
    let key = ctx.api.get("/api/v1/ledger/public-key", &ctx.people.lan).await?;
    let public_key = key["public_key"].as_str().context("the ledger has a public key")?.to_owned();
    std::fs::create_dir_all(&books.export_dir)
        .with_context(|| format!("{}: cannot create", books.export_dir.display()))?;
    std::fs::write(ctx.dir.join(format!("ledger-{d}.zip")), &zip).context("Failed to save the export")?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).context("the export is not a zip")?;
    let mut files = BTreeMap::new();
    for name in ["entries.csv", "manifest.json"] {
        let mut f = archive.by_name(name).with_context(|| format!("the export has no {name}"))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        std::fs::write(books.export_dir.join(name), &bytes).with_context(|| format!("cannot write {name}"))?;
        files.insert(name, bytes);
    }
    let v = crate::ledger::verify::verify(&files["entries.csv"], &files["manifest.json"], Some(&public_key))
        .map_err(|f| anyhow::anyhow!("the exported ledger does not verify: {f}"))?;
    std::fs::write(ctx.dir.join("ledger-public-key.json"), serde_json::to_vec_pretty(&key)?)?;
    say(format!(
        "ledger: exported {d} to {} and verified offline: {} entries, seq {}..{}, {} signed checkpoints",
        books.export_dir.display(),
        v.entries,
        v.first_seq,
        v.last_seq,
        v.checkpoints
    ));
    books.export_entries = v.entries;
    books.export_seq = (v.first_seq, v.last_seq);
    books.export_checkpoints = v.checkpoints;
    books.public_key = public_key;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_exception_gets_the_action_its_category_and_amounts_call_for() {
        let item = |category: &str, recorded: i64, settled: i64, payment: &str| json!({"category": category, "recorded_amount": recorded, "settled_amount": settled, "payment_id": payment});
        let action = |i: &Value, late: Option<&str>| decide(i, late).map(|(a, _)| a);
        assert_eq!(action(&item("amount_mismatch", 1_000, 500, "p1"), None), Some("write_off"));
        assert_eq!(action(&item("amount_mismatch", 500, 1_000, "p1"), None), Some("refund"));
        assert_eq!(action(&item("unconfirmed_in_records", 1_000, 1_000, "p1"), None), Some("confirm_from_settlement"));
        assert_eq!(action(&item("missing_in_settlement", 1_000, 0, "p1"), None), Some("accept"));
        assert_eq!(action(&item("missing_in_settlement", 1_000, 0, "p1"), Some("p1")), None, "the late line waits");
        assert_eq!(action(&item("duplicate_settlement_line", 0, 1_000, "p1"), None), Some("accept"));
        assert_eq!(action(&item("matched", 1_000, 1_000, "p1"), None), None);
    }

    #[test]
    fn open_exceptions_come_in_the_order_of_the_categories() {
        let report = json!({"items": [
            {"key": "a", "category": "missing_in_settlement", "state": "open"},
            {"key": "b", "category": "refund", "state": "pending_approval"},
            {"key": "c", "category": "duplicate_settlement_line", "state": "resolved"},
            {"key": "d", "category": "duplicate_settlement_line", "state": "open"},
        ]});
        let keys: Vec<String> = open_items(&report).iter().map(|i| i["key"].as_str().unwrap().to_owned()).collect();
        assert_eq!(keys, ["d", "b", "a"]);
    }
}
