//! What must hold of a history: after every step, and at its end. The end's expectations come
//! from the history (what was paid, confirmed, flagged, settled, refunded) and the decisions in
//! force, through what each account means (SPEC §8), not from the postings the server made.

use std::collections::{BTreeMap, HashMap};

use feerecon::domain::recon::ExceptionState;
use feerecon::settlement::LineStatus;
use feerecon::store::ExceptionRow;
use rand::Rng;
use serde_json::Value;

use super::steps::Step;
use super::{GATEWAYS, LAST, MLine, MPay, Model, date};
use crate::helpers::json;

type Net = BTreeMap<String, i64>;

fn nonzero(n: &Net) -> Net {
    n.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (k.clone(), *v)).collect()
}

async fn exceptions(m: &Model) -> Result<Vec<ExceptionRow>, String> {
    let mut all = Vec::new();
    for g in GATEWAYS {
        all.extend(m.w.app.store.gateway_exceptions(g).await.map_err(|e| e.to_string())?);
    }
    Ok(all)
}

/// The money each exception moved: its resolutions' postings and their reversals.
struct Moved {
    /// Posting → the exception it was made for.
    owner: HashMap<String, String>,
    postings: HashMap<String, Net>,
    moved: HashMap<String, Net>,
}

async fn moved(m: &Model) -> Result<Moved, String> {
    let entries = m.w.app.store.ledger_entries(0, i64::MAX).await.map_err(|e| e.to_string())?;
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut postings: HashMap<String, Net> = HashMap::new();
    let mut moved: HashMap<String, Net> = HashMap::new();
    for e in &entries {
        let by = if let Some(rest) = e.refs.strip_prefix("exception=") {
            rest.split(';').next().map(str::to_owned)
        } else if let Some(rest) = e.refs.strip_prefix("corrects=") {
            // A revenue line's budget tag follows the posting's refs (README "Remittance").
            rest.split(';').next().and_then(|pid| owner.get(pid)).cloned()
        } else {
            None
        };
        *postings.entry(e.posting_id.clone()).or_default().entry(e.account.clone()).or_default() += e.debit - e.credit;
        if let Some(x) = by {
            owner.insert(e.posting_id.clone(), x.clone());
            *moved.entry(x).or_default().entry(e.account.clone()).or_default() += e.debit - e.credit;
        }
    }
    Ok(Moved { owner, postings, moved })
}

/// After every step: the ledger verifies; a closed report is what its close left; an exception
/// moves money only through its un-reversed approved posting.
pub async fn step(m: &mut Model) -> Step {
    let (s, live) = json(m.w.app.get("/api/v1/ledger/verify", &m.w.auditor).await).await;
    if s != 200 || live["ok"] != true {
        return Err(format!("the ledger does not verify: {s} {live}"));
    }
    let closed: Vec<_> = m.closed.iter().map(|(k, v)| (*k, v.clone())).collect();
    let every = m.history.len() % 25 == 0;
    let one = if closed.is_empty() { 0 } else { m.rng.gen_range(0..closed.len()) };
    for (i, ((g, d), hash)) in closed.iter().enumerate() {
        if !every && i != one {
            continue;
        }
        let (s, report) =
            json(m.w.app.get(&format!("/api/v1/reconciliations/{}?gateway={g}", date(*d)), &m.w.auditor).await).await;
        if s != 200 || report["report_hash"] != hash.as_str() {
            return Err(format!("closed {g} {} changed: {s} {} (was {hash})", date(*d), report["report_hash"]));
        }
    }
    let Moved { owner, postings, moved } = moved(m).await?;
    for e in exceptions(m).await? {
        let id = &e.exception_id;
        let expected = match (&e.state, &e.posting_id) {
            (ExceptionState::Resolved, Some(pid)) if owner.get(pid) == Some(id) => postings[pid].clone(),
            _ => Net::new(),
        };
        let net = nonzero(moved.get(id).unwrap_or(&Net::new()));
        if net != nonzero(&expected) {
            return Err(format!(
                "exception {id} ({}, {:?}, posting {:?}) moved {net:?}, expected {expected:?}",
                e.category, e.state, e.posting_id
            ));
        }
    }
    Ok(())
}

/// The account balances (debit − credit) the history gives, by the accounts' meanings.
struct Expected {
    b: BTreeMap<String, i64>,
}

impl Expected {
    fn add(&mut self, account: &str, amount: i64) {
        *self.b.entry(account.to_owned()).or_default() += amount;
    }
}

fn payment_of<'a>(m: &'a Model, l: &MLine) -> Option<&'a MPay> {
    m.pays
        .iter()
        .find(|p| p.confirmed && p.paid.gateway == l.gateway && p.paid.no == l.no && p.paid.txn_ref == l.txn_ref)
}

/// Once every date is closed: every paid payment and first-occurrence line was counted by one
/// date, the dates' totals add up to the history's, and every balance is what it means.
pub async fn end(m: &Model) -> Step {
    for p in &m.pays {
        let v = m.w.app.payment(&m.w.auditor, &p.paid.id).await;
        let flagged = v["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == "duplicate_payment"));
        if (v["status"] == "paid") != p.confirmed || flagged != p.flagged {
            return Err(format!(
                "payment {} is {} {} on the server; the history has it confirmed: {}, flagged: {}",
                p.paid.id, v["status"], v["flags"], p.confirmed, p.flagged
            ));
        }
    }
    for g in GATEWAYS {
        let after = m.w.app.store.recon_data(g, date(LAST + 1)).await.map_err(|e| e.to_string())?;
        for p in after.payments() {
            let p = p.map_err(|e| e.to_string())?;
            if p.status.as_str() == "paid" && p.home_date.is_none() {
                return Err(format!("paid payment {} was counted by no date", p.payment_id));
            }
        }
        for l in after.lines() {
            let l = l.map_err(|e| e.to_string())?;
            if l.first && l.home_date.is_none() {
                return Err(format!("line {} of file {} was counted by no date", l.line_no, l.file_seq));
            }
        }
        let mut sums = [0i64; 4];
        for d in 0..=LAST {
            let (s, r) =
                json(m.w.app.get(&format!("/api/v1/reconciliations/{}?gateway={g}", date(d)), &m.w.auditor).await)
                    .await;
            if s != 200 {
                return Err(format!("report {g} {}: {s} {r}", date(d)));
            }
            for (i, k) in ["recorded_paid", "settled_gross", "gateway_fees", "refunds"].iter().enumerate() {
                sums[i] += r["totals"][k].as_i64().unwrap_or(0);
            }
        }
        let confirmed: i64 = m.pays.iter().filter(|p| p.paid.gateway == g && p.confirmed).map(|p| p.paid.amount).sum();
        let lines = |status| m.lines.iter().filter(move |l: &&MLine| l.gateway == g && l.status == status);
        let want = [
            confirmed,
            lines(LineStatus::Success).map(|l| l.amount).sum(),
            lines(LineStatus::Success).map(|l| l.fee).sum(),
            lines(LineStatus::Refund).map(|l| l.amount).sum(),
        ];
        if sums != want {
            return Err(format!(
                "{g}: the dates' totals (paid, gross, fees, refunds) {sums:?} ≠ the history's {want:?}"
            ));
        }
    }
    balances(m).await
}

async fn balances(m: &Model) -> Step {
    let mut x = Expected { b: BTreeMap::new() };
    // Confirmed payments: owed by the gateway; earned, or to refund when a duplicate.
    for p in m.pays.iter().filter(|p| p.confirmed) {
        x.add(&format!("gateway_clearing:{}", p.paid.gateway), p.paid.amount);
        x.add(if p.flagged { "refunds_payable" } else { "revenue" }, -p.paid.amount);
    }
    // Lines: received net of fees; settling their payment, or in suspense when none is paid.
    for l in &m.lines {
        let g = l.gateway;
        if l.status == LineStatus::Refund {
            x.add(&format!("bank:{g}"), -l.amount);
            x.add("refunds_payable", l.amount);
            continue;
        }
        x.add(&format!("bank:{g}"), l.amount - l.fee);
        x.add("gateway_fees", l.fee);
        match payment_of(m, l) {
            Some(_) => x.add(&format!("gateway_clearing:{g}"), -l.amount),
            None => x.add("suspense", -l.amount),
        }
    }
    // Decisions in force: resolved with a posting that was not reversed. Each moved what its
    // meaning says.
    let moved = moved(m).await?.moved;
    for e in exceptions(m).await? {
        if e.state != ExceptionState::Resolved || e.posting_id.is_none() {
            continue;
        }
        let r: Value = serde_json::from_str(e.resolution.as_deref().unwrap_or("null")).unwrap_or_default();
        let action = r["action"].as_str().unwrap_or_default();
        let mut one = Expected { b: BTreeMap::new() };
        decision(m, &mut one, &e.exception_id, e.category.as_str(), action)?;
        let mut server = moved.get(&e.exception_id).cloned().unwrap_or_default();
        let revenue: i64 = server.iter().filter(|(k, _)| k.starts_with("revenue:")).map(|(_, v)| v).sum();
        server.retain(|k, _| !k.starts_with("revenue:"));
        server.insert("revenue".into(), revenue);
        if nonzero(&server) != nonzero(&one.b) {
            return Err(format!(
                "{} ({} {action}) moved {:?}; its meaning: {:?}",
                e.exception_id,
                e.category,
                nonzero(&server),
                nonzero(&one.b)
            ));
        }
        for (k, v) in one.b {
            x.add(&k, v);
        }
    }
    let actual = m.w.balances().await;
    let mut got: BTreeMap<String, i64> = BTreeMap::new();
    for (k, v) in actual {
        let k = if k.starts_with("revenue:") { "revenue".to_owned() } else { k };
        *got.entry(k).or_default() += v;
    }
    let (got, want) = (nonzero(&got), nonzero(&x.b));
    if got != want {
        let diff: Vec<String> = want
            .keys()
            .chain(got.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| got.get(*k) != want.get(*k))
            .map(|k| format!("{k}: ledger {} ≠ meaning {}", got.get(k).unwrap_or(&0), want.get(k).unwrap_or(&0)))
            .collect();
        return Err(format!("balances differ from their meanings: {}", diff.join("; ")));
    }
    Ok(())
}

/// What a decision in force means for the accounts.
fn decision(m: &Model, x: &mut Expected, key: &str, category: &str, action: &str) -> Step {
    let parts: Vec<&str> = key.split(':').collect();
    let bad = || Err(format!("a decision the history cannot explain: {key} {category} {action}"));
    if let [g, "payment", id] = parts[..] {
        let Some(p) = m.pays.iter().find(|p| p.paid.id == id && p.confirmed) else { return bad() };
        let amount = p.paid.amount;
        match (category, action) {
            ("missing_in_settlement", "write_off") if !p.settled && !p.flagged => {
                x.add(&format!("gateway_clearing:{g}"), -amount);
                x.add("write_offs", amount);
            }
            ("duplicate_payment", "write_off") if p.flagged && !p.settled => {
                x.add("refunds_payable", amount);
                x.add(&format!("gateway_clearing:{g}"), -amount);
            }
            _ => return bad(),
        }
        return Ok(());
    }
    let [g, no, status] = parts[..] else { return bad() };
    let Some(l) = m.lines.iter().find(|l| l.gateway.as_str() == g && l.no == no && l.status.as_str() == status) else {
        return bad();
    };
    let paid = m.pays.iter().find(|p| p.confirmed && p.paid.gateway == l.gateway && p.paid.no == l.no);
    let settles = payment_of(m, l);
    match (category, action, l.status) {
        ("refund", "refund", LineStatus::Refund) if paid.is_some_and(|p| !p.flagged) => {
            x.add("revenue", l.amount);
            x.add("refunds_payable", -l.amount);
        }
        ("refund", "write_off", LineStatus::Refund) if !paid.is_some_and(|p| p.flagged) => {
            x.add("write_offs", l.amount);
            x.add("refunds_payable", -l.amount);
        }
        (
            "missing_in_records" | "unconfirmed_in_records" | "duplicate_payment",
            "refund" | "write_off",
            LineStatus::Success,
        ) if settles.is_none() => {
            x.add("suspense", l.amount);
            x.add(if action == "refund" { "refunds_payable" } else { "write_offs" }, -l.amount);
        }
        // Kept instead of refunded: the refund decided is cancelled, what was settled kept, and a
        // shortfall (or excess) leaves clearing.
        ("duplicate_payment", "write_off", LineStatus::Success) if settles.is_some_and(|p| p.flagged) => {
            let amount = settles.map_or(0, |p| p.paid.amount);
            x.add("refunds_payable", amount);
            x.add("write_offs", -l.amount);
            x.add(&format!("gateway_clearing:{g}"), l.amount - amount);
        }
        ("amount_mismatch", "write_off" | "refund", LineStatus::Success) if settles.is_some_and(|p| !p.flagged) => {
            let diff = l.amount - settles.map_or(0, |p| p.paid.amount);
            x.add(&format!("gateway_clearing:{g}"), diff);
            x.add(if action == "refund" { "refunds_payable" } else { "write_offs" }, -diff);
        }
        _ => return bad(),
    }
    Ok(())
}
