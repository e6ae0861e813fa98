//! The day's business through the API: the portal files the cases and creates payments; the
//! citizens pay at the simulated gateways, whose signed callbacks carry the scenario's faults;
//! the demo waits until every payment stands where the scenario leaves it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::scenario::{Scenario, Script, Twist};
use super::{Ctx, say};
use crate::domain::payment::Gateway;
use crate::simulator::{Faults, QueryFault, SimOutcome};

/// How many requests the portal and the citizens have in flight at once.
const IN_FLIGHT: usize = 8;

/// One payment the day created.
#[derive(Debug, Clone)]
pub struct Made {
    pub case: usize,
    pub payment_id: String,
    pub gateway: Gateway,
    pub txn_ref: Option<String>,
    /// Where the scenario leaves it before the books are done.
    pub expect: &'static str,
}

/// What the day did, for the books and the summary.
#[derive(Debug, Clone, Default)]
pub struct Played {
    pub payments: Vec<Made>,
    /// The reply the server gave the forged callback: (payment id, HTTP status, body).
    pub forged: Option<(String, u16, String)>,
    /// The bases of the rules the day's quotes applied that are not `verified`: rule → (status, basis).
    pub unverified: BTreeMap<String, (String, String)>,
    /// The case corrected after its payment: (code, due before, due after).
    pub corrected: Option<(String, i64, i64)>,
    /// The policy the server quotes with: id and hash, as its quotes name it.
    pub policy: String,
    /// Cases filed.
    pub cases: usize,
}

impl Played {
    /// The paid payment of case `i` on `gateway` (its first).
    pub fn paid_of(&self, i: usize, gateway: Gateway) -> Option<&Made> {
        self.payments.iter().find(|m| m.case == i && m.gateway == gateway && m.expect == "paid")
    }
}

/// Files the cases, pays them as the scenario says and waits for the payments to settle.
pub async fn play(ctx: &Ctx, s: &Scenario) -> anyhow::Result<Played> {
    let mut played = Played::default();
    file_cases(ctx, s, &mut played).await?;
    let done = AtomicUsize::new(0);
    let total = s.cases.len();
    let results: Vec<anyhow::Result<CaseResult>> = futures_util::stream::iter(0..total)
        .map(|i| {
            let done = &done;
            async move {
                let r = pay_case(ctx, s, i).await;
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n % 50 == 0 || n == total {
                    say(format!("  payments: {n}/{total} cases through the portal and the gateways"));
                }
                r
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for r in results {
        let (made, forged) = r?;
        played.payments.extend(made);
        if forged.is_some() {
            played.forged = forged;
        }
    }
    played.payments.sort_by(|a, b| (a.case, &a.payment_id).cmp(&(b.case, &b.payment_id)));
    say("  waiting for the lost callback's status query and the failures ZaloPay reports only when asked");
    for m in &played.payments {
        wait_for(ctx, &m.payment_id, m.expect).await?;
    }
    if let Some(i) = s.settlement.corrected {
        played.corrected = Some(correct(ctx, s, i).await?);
    }
    Ok(played)
}

/// `PUT` every case, then reads its quote back and checks it is the one the scenario planned.
async fn file_cases(ctx: &Ctx, s: &Scenario, played: &mut Played) -> anyhow::Result<()> {
    let quotes: Vec<anyhow::Result<Value>> = futures_util::stream::iter(&s.cases)
        .map(|c| async move {
            let path = format!("/api/v1/cases/{}", c.case.case_code);
            ctx.api.ok(Method::PUT, &path, &ctx.people.portal, Some(&c.body)).await?;
            let q = ctx.api.get(&format!("{path}/fee"), &ctx.people.portal).await?;
            if q["citizen_due"].as_i64() != Some(c.citizen_due) || q["budget_due"].as_i64() != Some(c.budget_due) {
                bail!(
                    "the server quotes {} as {q}, the demo planned {} / {}",
                    c.case.case_code,
                    c.citizen_due,
                    c.budget_due
                );
            }
            Ok(q)
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let (mut waived, mut budget) = (0, 0);
    for q in quotes {
        let q = q?;
        played.cases += 1;
        if played.policy.is_empty() {
            played.policy = format!(
                "{} {}",
                q["policy"]["id"].as_str().unwrap_or("?"),
                q["policy"]["hash"].as_str().unwrap_or("?")
            );
        }
        for item in q["items"].as_array().into_iter().flatten() {
            for rule in [&item["applied"], &item["support"]] {
                let status = rule["basis_status"].as_str().unwrap_or("verified");
                if status != "verified" {
                    let id = rule["rule"].as_str().unwrap_or_default().to_owned();
                    let basis = rule["basis"].as_str().unwrap_or_default().to_owned();
                    played.unverified.insert(id, (status.to_owned(), basis));
                }
            }
        }
        match (q["citizen_due"].as_i64(), q["budget_due"].as_i64()) {
            (Some(0), Some(0)) => waived += 1,
            (Some(0), Some(_)) => budget += 1,
            _ => {}
        }
    }
    let channels: BTreeSet<_> = s.cases.iter().map(|c| c.case.channel).collect();
    let subjects: BTreeSet<_> = s.cases.iter().flat_map(|c| c.case.subjects.iter().copied()).collect();
    say(format!(
        "cases: {} filed by the portal ({} channels, {} subjects); {} owe nothing, {} are paid by the budget",
        s.cases.len(),
        channels.len(),
        subjects.len(),
        waived,
        budget
    ));
    Ok(())
}

/// `POST /api/v1/cases/{code}/payments`: the payment, and the citizen opens its pay page.
async fn create(
    ctx: &Ctx,
    s: &Scenario,
    i: usize,
    gateway: Gateway,
    key: &str,
) -> anyhow::Result<(String, Option<String>, String)> {
    let code = &s.cases[i].case.case_code;
    let body = json!({"gateway": gateway, "return_url": "https://dichvucong.example.vn/ho-so/da-nop", "client_ip": "203.0.113.10"});
    let path = format!("/api/v1/cases/{code}/payments");
    let a = ctx.api.call(Method::POST, &path, &ctx.people.portal, Some(&body), Some(key)).await?;
    if a.status != 201 {
        bail!("POST {path} on {gateway}: {} {}", a.status, a.body);
    }
    let id = a.body["payment_id"].as_str().context("a payment has an id")?.to_owned();
    let status = a.body["status"].as_str().unwrap_or_default().to_owned();
    let txn_ref = a.body["txn_ref"].as_str().map(str::to_owned);
    if let Some(url) = a.body["pay_url"].as_str() {
        ctx.api.open(url).await?;
    }
    Ok((id, txn_ref, status))
}

/// The citizen acts at the gateway; returns the server's replies to the callbacks.
async fn act(
    ctx: &Ctx,
    txn_ref: &Option<String>,
    outcome: SimOutcome,
    faults: &Faults,
) -> anyhow::Result<Vec<(u16, String)>> {
    let txn_ref = txn_ref.as_deref().context("a gateway payment has a reference")?;
    let d = ctx.sim.pay(txn_ref, outcome, faults).await?;
    Ok(d.into_iter().map(|d| (d.status, d.body)).collect())
}

type CaseResult = (Vec<Made>, Option<(String, u16, String)>);

/// Plays one case's script.
async fn pay_case(ctx: &Ctx, s: &Scenario, i: usize) -> anyhow::Result<CaseResult> {
    let made = |payment_id: String, gateway, txn_ref, expect| Made { case: i, payment_id, gateway, txn_ref, expect };
    let code = s.cases[i].case.case_code.to_string();
    let key = |n: u32| format!("demo-{code}-{n}");
    let mut out = Vec::new();
    let mut forged = None;
    match s.cases[i].script {
        Script::NoGateway => {
            let (id, _, status) = create(ctx, s, i, Gateway::Vnpay, &key(1)).await?;
            let expect = if s.cases[i].budget_due > 0 { "budget_covered" } else { "waived" };
            if status != expect {
                bail!("case {code} owes nothing: its payment is {status}, not {expect}");
            }
            out.push(made(id, Gateway::Vnpay, None, expect));
        }
        Script::Pay { gateway, twist } => {
            let (id, txn, _) = create(ctx, s, i, gateway, &key(1)).await?;
            let success = SimOutcome::Success;
            match twist {
                Twist::Plain => {
                    act(ctx, &txn, success, &Faults::default()).await?;
                }
                Twist::Duplicates { copies, concurrent } => {
                    act(ctx, &txn, success, &Faults { duplicates: copies, concurrent, ..Faults::default() }).await?;
                }
                Twist::Forged => {
                    let replies = act(ctx, &txn, success, &Faults { forged: true, ..Faults::default() }).await?;
                    let (status, body) = replies.into_iter().next().context("the forged callback was delivered")?;
                    forged = Some((id.clone(), status, body));
                    act(ctx, &txn, success, &Faults::default()).await?;
                }
                Twist::Lost => {
                    act(ctx, &txn, success, &Faults { lost: true, ..Faults::default() }).await?;
                }
                Twist::WrongAmount => {
                    let amount = s.cases[i].citizen_due + 10_000;
                    if let Some(r) = &txn {
                        ctx.sim.fault_queries(r, QueryFault { amount: Some(amount), ..QueryFault::default() });
                    }
                    act(ctx, &txn, success, &Faults { wrong_amount_by: 10_000, ..Faults::default() }).await?;
                }
            }
            let expect = if twist == Twist::WrongAmount { "pending" } else { "paid" };
            out.push(made(id, gateway, txn, expect));
        }
        Script::FailThenRetry { first, then } => {
            let (id, txn, _) = create(ctx, s, i, first, &key(1)).await?;
            act(ctx, &txn, SimOutcome::Failure, &Faults::default()).await?;
            wait_for(ctx, &id, "failed").await?;
            out.push(made(id, first, txn, "failed"));
            let (id, txn, _) = create(ctx, s, i, then, &key(2)).await?;
            act(ctx, &txn, SimOutcome::Success, &Faults::default()).await?;
            out.push(made(id, then, txn, "paid"));
        }
        Script::FailAndGiveUp { gateway } => {
            let (id, txn, _) = create(ctx, s, i, gateway, &key(1)).await?;
            act(ctx, &txn, SimOutcome::Failure, &Faults::default()).await?;
            out.push(made(id, gateway, txn, "failed"));
        }
        Script::Abandon { gateway } => {
            let (id, txn, _) = create(ctx, s, i, gateway, &key(1)).await?;
            out.push(made(id, gateway, txn, "pending"));
        }
        Script::PaidTwice { first, second } => {
            // Two tabs: both payments are opened while neither is paid, then both are paid.
            let (a, ta, _) = create(ctx, s, i, first, &key(1)).await?;
            let (b, tb, _) = create(ctx, s, i, second, &key(2)).await?;
            act(ctx, &ta, SimOutcome::Success, &Faults::default()).await?;
            wait_for(ctx, &a, "paid").await?;
            act(ctx, &tb, SimOutcome::Success, &Faults::default()).await?;
            out.push(made(a, first, ta, "paid"));
            out.push(made(b, second, tb, "paid"));
        }
    }
    Ok((out, forged))
}

/// Waits (up to a minute) until the payment's status is `status`.
pub async fn wait_for(ctx: &Ctx, payment_id: &str, status: &str) -> anyhow::Result<Value> {
    wait_for_any(ctx, payment_id, &[status]).await
}

/// Waits (up to a minute) until the payment's status is one of `statuses`.
pub async fn wait_for_any(ctx: &Ctx, payment_id: &str, statuses: &[&str]) -> anyhow::Result<Value> {
    let path = format!("/api/v1/payments/{payment_id}");
    let status = statuses.join(" or ");
    for _ in 0..600 {
        let p = ctx.api.get(&path, &ctx.people.portal).await?;
        if statuses.iter().any(|s| p["status"] == *s) {
            return Ok(p);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let p = ctx.api.get(&path, &ctx.people.portal).await?;
    bail!("payment {payment_id} did not become {status} within a minute: {p}")
}

/// The one-stop office corrects a paid case: the applicant is a poor household. Returns the
/// case's code and its due before and after, as the server quotes them.
async fn correct(ctx: &Ctx, s: &Scenario, i: usize) -> anyhow::Result<(String, i64, i64)> {
    let c = &s.cases[i];
    let mut body = c.body.clone();
    let mut subjects: Vec<Value> = body["subjects"].as_array().cloned().unwrap_or_default();
    subjects.push(json!("poor_household"));
    body["subjects"] = Value::Array(subjects);
    let path = format!("/api/v1/cases/{}", c.case.case_code);
    ctx.api.ok(Method::PUT, &path, &ctx.people.portal, Some(&body)).await?;
    let q = ctx.api.get(&format!("{path}/fee"), &ctx.people.portal).await?;
    let after = q["citizen_due"].as_i64().context("a quote has citizen_due")?;
    say(format!(
        "  the one-stop office corrects case {} after its payment (poor household): it owes {} đ, the citizen paid {} đ",
        c.case.case_code,
        super::summary::dong(after),
        super::summary::dong(c.citizen_due)
    ));
    Ok((c.case.case_code.to_string(), c.citizen_due, after))
}
