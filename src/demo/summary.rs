//! The demo's summary: every figure read back from the service's API once the day is closed
//! (the reports, the day view, the payments, the callbacks' evidence, the notifications, the
//! ledger), printed for a finance officer to check and written to `summary.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;

use super::books::Books;
use super::day::Played;
use super::receiver::{Received, Receiver};
use super::{Ctx, say};
use crate::domain::Secret;
use crate::domain::payment::Gateway;

/// One category of a gateway's report: count and amount (đồng).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Figure {
    pub count: i64,
    pub amount: i64,
}

/// One gateway's closed day.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayDay {
    pub gateway: Gateway,
    /// The nine categories of SPEC §7.2, in the report's order.
    pub categories: Vec<(String, Figure)>,
    /// `recorded_paid`, `settled_gross`, `gateway_fees`, `refunds`, `settled_net`.
    pub totals: BTreeMap<String, i64>,
    pub report_hash: String,
    pub closed: bool,
    /// The gateway's payments by status.
    pub payments: BTreeMap<String, i64>,
}

/// Everything the demo prints at the end.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub date: String,
    pub policy: String,
    pub cases: usize,
    pub gateways: Vec<GatewayDay>,
    /// Cases that owe nothing: count, citizen_due, budget_due (from `GET /api/v1/days/{date}`).
    pub waived: (i64, i64, i64),
    pub budget_covered: (i64, i64, i64),
    /// Flagged payments, by flag (`GET /api/v1/payments?flag=F`).
    pub flags: BTreeMap<String, i64>,
    /// The forged callback: its payment, the server's reply (HTTP status, body) and how its
    /// payment's evidence reads.
    pub forged_payment: Option<String>,
    pub forged_reply: Option<(u16, String)>,
    pub forged_evidence: Vec<String>,
    /// Notifications: delivered as the API lists them, by type; failed; what the receiver counted.
    pub notifications_delivered: BTreeMap<String, i64>,
    pub notifications_failed: i64,
    pub received: Received,
    /// Rules the day's quotes applied whose basis is not verified: rule → (status, basis).
    pub unverified_bases: BTreeMap<String, (String, String)>,
    /// E-receipts issued on the date (`GET /api/v1/receipts/summary`): count, what the
    /// originals acknowledge, and whether that equals what the ledger's confirmations collected.
    pub receipts: (i64, i64, bool),
    pub exceptions_resolved: usize,
    /// Of those, the resolutions that moved money, approved by a second finance officer.
    pub exceptions_approved: usize,
    pub late_line_matched: bool,
    pub self_approval: Option<String>,
    /// The live check of the whole chain (`GET /api/v1/ledger/verify`).
    pub ledger_ok: bool,
    pub ledger_entries: i64,
    /// The export verified offline.
    pub export_entries: i64,
    pub export_checkpoints: usize,
    pub export_dir: String,
    pub public_key: String,
}

/// Reads the figures back, once the outbox has delivered every event.
pub async fn read_back(ctx: &Ctx, p: &Played, b: &Books, receiver: &Receiver) -> anyhow::Result<Summary> {
    let token = &ctx.people.lan;
    let d = ctx.date;
    // The notifier works in the background: wait until nothing is left to deliver.
    let mut waited = 0;
    while !ctx.api.all("/api/v1/notifications?state=pending", token).await?.is_empty() {
        waited += 1;
        if waited > 600 {
            bail!("notifications are still pending after a minute");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut delivered = BTreeMap::new();
    for n in ctx.api.all("/api/v1/notifications?state=delivered&limit=1000", token).await? {
        *delivered.entry(n["type"].as_str().unwrap_or_default().to_owned()).or_insert(0) += 1;
    }
    let failed = i64::try_from(ctx.api.all("/api/v1/notifications?state=failed", token).await?.len())?;

    let day = ctx.api.get(&format!("/api/v1/days/{d}"), token).await?;
    let sums = |v: &Value| {
        (
            v["count"].as_i64().unwrap_or(0),
            v["citizen_due"].as_i64().unwrap_or(0),
            v["budget_due"].as_i64().unwrap_or(0),
        )
    };
    let mut statuses: BTreeMap<Gateway, BTreeMap<String, i64>> = BTreeMap::new();
    for m in p.payments.iter().filter(|m| m.txn_ref.is_some()) {
        let pay = ctx.api.get(&format!("/api/v1/payments/{}", m.payment_id), token).await?;
        let status = pay["status"].as_str().unwrap_or_default().to_owned();
        *statuses.entry(m.gateway).or_default().entry(status).or_insert(0) += 1;
    }
    let mut gateways = Vec::new();
    for g in super::GATEWAYS {
        let r = ctx.api.get(&format!("/api/v1/reconciliations/{d}?gateway={g}"), token).await?;
        let categories = r["summary"]
            .as_object()
            .context("a report has a summary")?
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Figure { count: v["count"].as_i64().unwrap_or(0), amount: v["amount"].as_i64().unwrap_or(0) },
                )
            })
            .collect();
        let totals = ["recorded_paid", "settled_gross", "gateway_fees", "refunds", "settled_net"]
            .iter()
            .map(|k| ((*k).to_owned(), r["totals"][k].as_i64().unwrap_or(0)))
            .collect();
        let closed = day["gateways"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["gateway"] == g.as_str() && !x["closed_at"].is_null());
        gateways.push(GatewayDay {
            gateway: *g,
            categories,
            totals,
            report_hash: r["report_hash"].as_str().unwrap_or_default().to_owned(),
            closed,
            payments: statuses.remove(g).unwrap_or_default(),
        });
    }
    let mut flags = BTreeMap::new();
    for f in [
        "late_success",
        "duplicate_payment",
        "callback_amount_mismatch",
        "conflicting_gateway_txn_no",
        "unresolved_pending",
    ] {
        let n = ctx.api.all(&format!("/api/v1/payments?flag={f}"), token).await?.len();
        flags.insert(f.to_owned(), i64::try_from(n)?);
    }
    let forged_evidence = match &p.forged {
        Some((id, _, _)) => ctx
            .api
            .all(&format!("/api/v1/payments/{id}/callbacks"), token)
            .await?
            .iter()
            .map(|c| c["result"].as_str().unwrap_or_default().to_owned())
            .collect(),
        None => Vec::new(),
    };
    let resolved = ctx.api.all(&format!("/api/v1/exceptions?state=resolved&date={d}"), token).await?;
    let exceptions_resolved = resolved.len();
    // Only a resolution that moves money waits for a second officer; an accept does not.
    let exceptions_approved = resolved.iter().filter(|e| e["resolution"]["approved_by"].is_string()).count();
    if exceptions_resolved != b.resolved.len() {
        anyhow::bail!(
            "the server lists {exceptions_resolved} exceptions of {d} resolved, the demo resolved {}",
            b.resolved.len()
        );
    }
    let live = ctx.api.get("/api/v1/ledger/verify", token).await?;
    // The cases the server knows, from its metrics (read from the database at scrape time).
    let metrics = ctx.api.text("/metrics").await?;
    let cases = metrics
        .lines()
        .find_map(|l| l.strip_prefix("feerecon_cases "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .context("/metrics names feerecon_cases")?;
    let r = ctx.api.get(&format!("/api/v1/receipts/summary?date={d}"), token).await?;
    let receipts = (
        r["totals"]["receipts"].as_i64().unwrap_or(0),
        r["totals"]["originals"].as_i64().unwrap_or(0),
        r["ledger"]["matches"] == true,
    );
    Ok(Summary {
        date: d.to_string(),
        policy: p.policy.clone(),
        cases,
        gateways,
        waived: sums(&day["waived"]),
        budget_covered: sums(&day["budget_covered"]),
        flags,
        forged_payment: p.forged.as_ref().map(|(id, _, _)| id.clone()),
        forged_reply: p.forged.as_ref().map(|(_, s, b)| (*s, b.clone())),
        forged_evidence,
        notifications_delivered: delivered,
        notifications_failed: failed,
        received: receiver.received(),
        unverified_bases: p.unverified.clone(),
        receipts,
        // Read back from the exceptions list (a resolution that confirmed a payment leaves no
        // item in the report, so the report cannot say it).
        exceptions_resolved,
        exceptions_approved,
        late_line_matched: b.late_line_matched,
        self_approval: b.self_approval.clone(),
        ledger_ok: live["ok"] == true,
        ledger_entries: live["entries"].as_i64().unwrap_or(0),
        export_entries: b.export_entries,
        export_checkpoints: b.export_checkpoints,
        export_dir: b.export_dir.display().to_string(),
        public_key: b.public_key.clone(),
    })
}

/// `1234567` as `1.234.567` (the Vietnamese grouping).
pub fn dong(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

impl Summary {
    /// Prints the summary for a finance officer.
    pub fn print(&self, took: Duration) {
        say("");
        say(format!("=== {} reconciled and closed: the summary, read back from the API ===", self.date));
        say(format!("policy {}; {} cases", self.policy, self.cases));
        for g in &self.gateways {
            let pays: Vec<String> = g.payments.iter().map(|(s, n)| format!("{n} {s}")).collect();
            say(format!(
                "{} ({}; payments: {})",
                g.gateway.as_str().to_uppercase(),
                if g.closed { "closed" } else { "OPEN" },
                pays.join(", ")
            ));
            for (category, f) in &g.categories {
                say(format!("  {category:<26} {:>5}  {:>15} đ", f.count, dong(f.amount)));
            }
            let t = |k: &str| dong(g.totals.get(k).copied().unwrap_or(0));
            say(format!(
                "  recorded paid {} đ; settled {} đ − fees {} đ − refunds {} đ = net {} đ",
                t("recorded_paid"),
                t("settled_gross"),
                t("gateway_fees"),
                t("refunds"),
                t("settled_net")
            ));
        }
        say(format!(
            "no gateway: {} waived (citizen {} đ); {} budget-covered (budget owes {} đ)",
            self.waived.0,
            dong(self.waived.1),
            self.budget_covered.0,
            dong(self.budget_covered.2)
        ));
        let flags: Vec<String> = self.flags.iter().filter(|(_, n)| **n > 0).map(|(f, n)| format!("{n} {f}")).collect();
        say(format!("flagged payments: {}", if flags.is_empty() { "none".to_owned() } else { flags.join(", ") }));
        if let Some((status, body)) = &self.forged_reply {
            say(format!(
                "forged callback: the server answered HTTP {status} {body}; evidence kept for payment {}: {}",
                self.forged_payment.as_deref().unwrap_or("?"),
                self.forged_evidence.join(", ")
            ));
        }
        let by_type: Vec<String> = self.notifications_delivered.iter().map(|(t, n)| format!("{n} {t}")).collect();
        say(format!(
            "notifications: {} delivered ({}), {} failed; the portal's receiver counted {} events with good signatures, {} redelivered, {} refused",
            self.notifications_delivered.values().sum::<i64>(),
            by_type.join(", "),
            self.notifications_failed,
            self.received.events,
            self.received.redelivered,
            self.received.bad_signature
        ));
        say(format!(
            "e-receipts issued: {} for {} đ, {} the ledger's confirmations",
            self.receipts.0,
            dong(self.receipts.1),
            if self.receipts.2 { "equal to" } else { "NOT EQUAL to" }
        ));
        say(format!(
            "exceptions: {} resolved, {} of them moving money under four eyes (an officer approving her own: {})",
            self.exceptions_resolved,
            self.exceptions_approved,
            self.self_approval.as_deref().unwrap_or("not tried")
        ));
        if !self.unverified_bases.is_empty() {
            say("quoted bases not verified in a published text:");
            for (rule, (status, basis)) in &self.unverified_bases {
                say(format!("  {rule} [{status}] {basis}"));
            }
        }
        say(format!(
            "ledger: the live chain {} ({} entries); the export in {} verified offline ({} entries, {} signed checkpoints, key {})",
            if self.ledger_ok { "verifies" } else { "DOES NOT VERIFY" },
            self.ledger_entries,
            self.export_dir,
            self.export_entries,
            self.export_checkpoints,
            self.public_key
        ));
        say(format!("the whole day took {:.1} s", took.as_secs_f64()));
    }

    /// Prints where to look while the server keeps serving.
    pub fn print_dashboard(&self, base: &str, login: &(String, Secret), serving: bool) {
        say("");
        say(format!("dashboard: {base}/   login: {}   password: {}", login.0, login.1.expose()));
        say(format!(
            "  the calendar shows {} closed; {base}/days/{}?gateway=vnpay has the day's report, its exceptions and their resolutions",
            self.date, self.date
        ));
        if serving {
            say("serving until Ctrl-C (the database stays in the demo folder)");
        } else {
            say("--exit: the server stops now; run the demo without --exit to browse the day");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dong;

    #[test]
    fn amounts_are_grouped_by_thousands_with_dots() {
        assert_eq!(dong(0), "0");
        assert_eq!(dong(999), "999");
        assert_eq!(dong(1_000), "1.000");
        assert_eq!(dong(12_962_030), "12.962.030");
        assert_eq!(dong(-1_500), "-1.500");
    }
}
