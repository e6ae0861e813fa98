//! The steps of a history: each picks what to do from the seed and the server's state, does it
//! over HTTP, checks the answer is one the SPEC allows, and records what happened in the model.

use feerecon::domain::payment::Gateway;
use feerecon::domain::recon::ExceptionState;
use feerecon::settlement::{Line, LineStatus};
use feerecon::simulator::{Faults, SimOutcome};
use feerecon::store::ExceptionRow;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::{GATEWAYS, LAST, MLine, MPay, Model, date};
use crate::helpers::json;

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

pub type Step = Result<(), String>;

/// Actions worth trying on an exception of a category, in no particular order.
fn candidates(category: &str) -> &'static [&'static str] {
    match category {
        "duplicate_settlement_line" => &["accept", "refund", "write_off"],
        "refund" => &["accept", "refund", "write_off"],
        "missing_in_records" | "unconfirmed_in_records" => {
            &["refund", "write_off", "confirm_from_settlement", "accept"]
        }
        "duplicate_payment" => &["refund", "write_off", "accept"],
        "amount_mismatch" => &["write_off", "refund", "accept"],
        "fee_mismatch" => &["accept", "refund"],
        _ => &["accept", "write_off", "refund"],
    }
}

impl Model {
    fn log(&mut self, s: String) {
        self.history.push(s);
    }

    /// A place for an exception that does not depend on the ids the server drew, so that a seed
    /// plays the same history every time: its date, then its payment's or line's place in the
    /// history, then its line number in a file.
    fn place(&self, e: &ExceptionRow) -> (chrono::NaiveDate, usize, usize, String) {
        let parts: Vec<&str> = e.exception_id.split(':').collect();
        let index = match parts[..] {
            [_, "payment", id, ..] => self.pays.iter().position(|p| p.paid.id == id),
            [g, no, status, ..] => {
                self.lines.iter().position(|l| l.gateway.as_str() == g && l.no == no && l.status.as_str() == status)
            }
            _ => None,
        };
        (
            e.business_date,
            usize::from(parts.get(1) == Some(&"payment")),
            index.unwrap_or(usize::MAX),
            parts.last().unwrap_or(&"").to_string(),
        )
    }

    /// The exceptions of both gateways in their places.
    async fn exceptions(&self) -> Result<Vec<ExceptionRow>, String> {
        let mut rows = Vec::new();
        for g in GATEWAYS {
            rows.extend(self.w.app.store.gateway_exceptions(g).await.map_err(|e| e.to_string())?);
        }
        rows.sort_by_cached_key(|e| self.place(e));
        Ok(rows)
    }

    fn gateway(&mut self) -> Gateway {
        GATEWAYS[self.rng.gen_range(0..GATEWAYS.len())]
    }

    /// One step of the history.
    pub(super) async fn step(&mut self) -> Step {
        self.advance_clock();
        if self.today < LAST && self.rng.gen_range(0..self.day_every) == 0 {
            self.today += 1;
            self.tick = 0;
            self.w.at(&self.now().to_rfc3339());
            self.log(format!("day {} begins", date(self.today)));
            return Ok(());
        }
        let r = self.rng.gen_range(0..100);
        let lost: Vec<usize> = (0..self.pays.len()).filter(|&i| self.pays[i].lost).collect();
        match r {
            0..=27 => self.pay().await,
            28..=32 if !lost.is_empty() => {
                let i = *lost.choose(&mut self.rng).unwrap_or(&0);
                self.recover(i).await
            }
            33..=35 => self.redeliver().await,
            36..=50 => self.import().await,
            51..=62 if self.today > 0 => {
                let (g, d) = (self.gateway(), self.rng.gen_range(0..self.today));
                self.run(g, d).await.map(|_| ())
            }
            63..=82 => self.act().await,
            83..=92 if self.today > 0 => {
                let (g, d) = (self.gateway(), self.rng.gen_range(0..self.today));
                let racing = lost.iter().copied().find(|&i| self.pays[i].paid.gateway == g);
                self.close(g, d, racing.filter(|_| r >= 90)).await.map(|_| ())
            }
            _ => self.pay().await,
        }
    }

    /// A case paid today: once, lost, failed, or twice (two payments, both taken).
    async fn pay(&mut self) -> Step {
        let g = self.gateway();
        let kind = self.rng.gen_range(0..10);
        let code = self.new_case().await;
        let n = self.cases;
        let first = self.w.create(&code, g, &format!("a{n}")).await.ok_or("a payment was refused")?;
        let second =
            if kind >= 8 { Some(self.w.create(&code, g, &format!("b{n}")).await.ok_or("refused")?) } else { None };
        let (outcome, lost) = match kind {
            0..=1 => (SimOutcome::Success, true),
            2 => (SimOutcome::Failure, false),
            _ => (SimOutcome::Success, false),
        };
        let at = self.now();
        for created in std::iter::once(first).chain(second) {
            let faults = Faults { lost, duplicates: u32::from(self.rng.gen_bool(0.1)), ..Faults::default() };
            let paid = self.w.complete(created, outcome, &faults).await;
            self.log(format!("pay {g} {} {} {outcome:?}{}", paid.id, paid.txn_ref, if lost { " lost" } else { "" }));
            let success = matches!(outcome, SimOutcome::Success);
            self.pays.push(MPay {
                paid,
                at,
                success,
                simulated: true,
                confirmed: false,
                flagged: false,
                lost: lost && success,
                settled: false,
                refunded: false,
            });
            if success && !lost {
                self.confirm(self.pays.len() - 1);
            }
        }
        Ok(())
    }

    /// The lost callback of payment `i` comes now.
    async fn recover(&mut self, i: usize) -> Step {
        self.log(format!("callback {} comes", self.pays[i].paid.id));
        let d = self.w.sim.redeliver(&self.pays[i].paid.txn_ref).await.map_err(|e| e.to_string())?;
        if d.iter().any(|d| !(200..300).contains(&d.status)) {
            return Err(format!("a late callback was not taken: {d:?}"));
        }
        self.pays[i].lost = false;
        self.confirm(i);
        Ok(())
    }

    /// A callback the server has comes again: nothing changes.
    async fn redeliver(&mut self) -> Step {
        let known: Vec<usize> = (0..self.pays.len())
            .filter(|&i| self.pays[i].success && self.pays[i].simulated && !self.pays[i].lost)
            .collect();
        let Some(&i) = known.choose(&mut self.rng) else { return self.pay().await };
        self.log(format!("callback {} again", self.pays[i].paid.id));
        let d = self.w.sim.redeliver(&self.pays[i].paid.txn_ref).await.map_err(|e| e.to_string())?;
        if d.iter().any(|d| !(200..300).contains(&d.status)) {
            return Err(format!("a repeated callback was not acknowledged: {d:?}"));
        }
        Ok(())
    }

    /// A settlement file of one gateway: some unsettled payments (some short or long, some
    /// twice), perhaps a stranger, a second charge, a refund, a line of an earlier file.
    async fn import(&mut self) -> Step {
        let g = self.gateway();
        let now = self.now();
        let mut file: Vec<MLine> = Vec::new();
        let line = |p: &MPay, amount: i64, status: LineStatus, at| MLine {
            gateway: g,
            no: p.paid.no.clone(),
            txn_ref: p.paid.txn_ref.clone(),
            amount,
            fee: if status == LineStatus::Success { 1_485 } else { 0 },
            status,
            at,
        };
        let open: Vec<usize> = (0..self.pays.len())
            .filter(|&i| self.pays[i].paid.gateway == g && self.pays[i].success && !self.pays[i].settled)
            .collect();
        for i in open {
            if self.rng.gen_bool(0.5) {
                continue;
            }
            let p = &self.pays[i];
            let (amount, twice) = match self.rng.gen_range(0..20) {
                0 => (p.paid.amount - 5_000, false),
                1 => (p.paid.amount + 5_000, false),
                2..=3 => (p.paid.amount, true),
                _ => (p.paid.amount, false),
            };
            let l = line(p, amount, LineStatus::Success, p.at);
            if twice {
                file.push(l.clone());
            }
            file.push(l);
        }
        let settled: Vec<usize> = (0..self.pays.len())
            .filter(|&i| {
                let p = &self.pays[i];
                p.paid.gateway == g && p.confirmed && p.settled && !p.refunded
            })
            .collect();
        if self.rng.gen_bool(0.15) {
            self.strangers += 1;
            let n = self.strangers;
            file.push(MLine {
                gateway: g,
                no: format!("9{n:07}"),
                txn_ref: format!("STRANGER{n}"),
                amount: 135_000,
                fee: 1_485,
                status: LineStatus::Success,
                at: now,
            });
        }
        if let Some(&i) = settled.choose(&mut self.rng).filter(|_| self.rng.gen_bool(0.1)) {
            self.strangers += 1;
            let mut l = line(&self.pays[i], self.pays[i].paid.amount, LineStatus::Success, now);
            l.no = format!("8{:07}", self.strangers);
            file.push(l);
        }
        if let Some(&i) = settled.choose(&mut self.rng).filter(|_| self.rng.gen_bool(0.15)) {
            file.push(line(&self.pays[i], self.pays[i].paid.amount, LineStatus::Refund, now));
        }
        let earlier: Vec<MLine> = self.imported.iter().filter(|l| l.gateway == g).cloned().collect();
        if let Some(l) = earlier.choose(&mut self.rng).filter(|_| self.rng.gen_bool(0.1)) {
            file.push(l.clone());
        }
        if file.is_empty() {
            return self.pay().await;
        }
        let lines: Vec<Line> = file
            .iter()
            .enumerate()
            .map(|(i, l)| Line {
                line_no: i + 2,
                gateway_txn_no: l.no.clone(),
                txn_ref: l.txn_ref.clone(),
                amount: l.amount,
                fee: l.fee,
                txn_time: l.at,
                status: l.status,
            })
            .collect();
        self.log(format!(
            "import {g}: {}",
            file.iter()
                .map(|l| format!("{}/{}/{:?}/{}", l.no, l.txn_ref, l.status, l.amount))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let (s, v) = self.w.try_import_lines(g, &lines).await;
        match (s, error_code(&v)) {
            (201, _) => {}
            // The same bytes as an earlier file: refused, nothing imported.
            (409, "conflict") if v["error"]["message"].as_str().is_some_and(|m| m.contains("imported before")) => {
                self.log("  the same file again: refused".into());
                return Ok(());
            }
            _ => return Err(format!("import {g}: {s} {v}")),
        }
        for l in &file {
            self.record_line(l);
        }
        Ok(())
    }

    /// Runs (gateway, date): a closed date's run gives back its closed report.
    pub(super) async fn run(&mut self, g: Gateway, d: usize) -> Result<Value, String> {
        self.log(format!("run {g} {}", date(d)));
        let report = self.w.run_for(g, &date(d).to_string()).await;
        if let Some(hash) = self.closed.get(&(g, d))
            && report["report_hash"] != hash.as_str()
        {
            return Err(format!("the run of closed {g} {} changed its report: {report}", date(d)));
        }
        Ok(report)
    }

    /// Acts on an open or pending exception: resolves an open one with some action, approves or
    /// rejects a pending one (by the other finance user).
    async fn act(&mut self) -> Step {
        let mut pending = self.exceptions().await?;
        pending.retain(|e| matches!(e.state, ExceptionState::Open | ExceptionState::PendingApproval));
        let Some(e) = pending.choose(&mut self.rng).cloned() else { return self.pay().await };
        if e.state == ExceptionState::PendingApproval {
            let approve = self.rng.gen_bool(0.75);
            return self.decide(&e.exception_id, approve).await;
        }
        let mut actions = candidates(e.category.as_str()).to_vec();
        actions.shuffle(&mut self.rng);
        self.resolve(&e.exception_id, actions[0]).await.map(|_| ())
    }

    /// Resolves `id` with `action`; `Ok(false)` when the action does not apply (422).
    pub(super) async fn resolve(&mut self, id: &str, action: &str) -> Result<bool, String> {
        let mut body = json!({"action": action, "note": "model"});
        if action == "confirm_from_settlement" {
            body["case_code"] = json!(self.new_case().await);
        }
        let (s, v) = self.w.act(&self.w.f1.clone(), id, "resolve", body.clone()).await;
        self.log(format!("resolve {id} {action} → {s} {}", if s == 200 { "" } else { error_code(&v) }));
        match s {
            200 => Ok(true),
            422 => Ok(false),
            _ => Err(format!("resolve {id} {action}: {s} {v}")),
        }
    }

    /// Approves or rejects the pending resolution of `id`.
    pub(super) async fn decide(&mut self, id: &str, approve: bool) -> Step {
        let verb = if approve { "approve" } else { "reject" };
        let (s, v) = self.w.act(&self.w.f2.clone(), id, verb, json!({"note": "model"})).await;
        self.log(format!("{verb} {id} → {s}"));
        if s != 200 {
            return Err(format!("{verb} {id}: {s} {v}"));
        }
        let row = self.w.app.store.get_exception(id).await.map_err(|e| e.to_string())?.ok_or("gone")?;
        let resolution: Value = serde_json::from_str(row.resolution.as_deref().unwrap_or("null")).unwrap_or_default();
        if approve && resolution["action"] == "confirm_from_settlement" {
            self.confirmed_from_line(id, &resolution)?;
        }
        Ok(())
    }

    /// A line's payment recorded paid by an approved `confirm_from_settlement` (`v`: its
    /// resolution).
    fn confirmed_from_line(&mut self, id: &str, v: &Value) -> Step {
        let pid = v["payment_id"].as_str().ok_or_else(|| format!("no payment_id in {v}"))?;
        if let Some(i) = self.pays.iter().position(|p| p.paid.id == pid) {
            self.confirm(i);
            return Ok(());
        }
        // A line no payment had: a new payment of the case the resolution named.
        let l = self
            .lines
            .iter()
            .find(|l| format!("{}:{}:success", l.gateway, l.no) == id)
            .cloned()
            .ok_or_else(|| format!("{id} confirmed {pid}, which the model does not know"))?;
        let case = v["case_code"].as_str().unwrap_or_default().to_owned();
        self.pays.push(MPay {
            paid: crate::world::Paid {
                id: pid.to_owned(),
                gateway: l.gateway,
                case_code: case,
                txn_ref: l.txn_ref.clone(),
                amount: l.amount,
                no: l.no.clone(),
            },
            at: l.at,
            success: true,
            simulated: false,
            confirmed: false,
            flagged: false,
            lost: false,
            settled: true,
            refunded: false,
        });
        self.confirm(self.pays.len() - 1);
        Ok(())
    }

    /// Closes (gateway, date), perhaps while the lost callback of `racing` comes. `Ok(true)`
    /// when the date is closed now.
    pub(super) async fn close(&mut self, g: Gateway, d: usize, racing: Option<usize>) -> Result<bool, String> {
        let ds = date(d).to_string();
        let (s, v) = match racing {
            None => self.w.close_for(g, &ds).await,
            Some(i) => {
                let txn_ref = self.pays[i].paid.txn_ref.clone();
                let (closed, delivered) = tokio::join!(self.w.close_for(g, &ds), self.w.sim.redeliver(&txn_ref));
                let delivered = delivered.map_err(|e| e.to_string())?;
                if delivered.iter().any(|d| !(200..300).contains(&d.status)) {
                    return Err(format!("a callback racing a close was not taken: {delivered:?}"));
                }
                self.pays[i].lost = false;
                self.confirm(i);
                closed
            }
        };
        let code = error_code(&v).to_owned();
        self.log(format!(
            "close {g} {ds}{} → {s} {code}",
            racing.map(|i| format!(" racing callback {}", self.pays[i].paid.id)).unwrap_or_default()
        ));
        let was_closed = self.closed.contains_key(&(g, d));
        match (s, code.as_str()) {
            (200, _) if !was_closed => {
                let (s, report) =
                    json(self.w.app.get(&format!("/api/v1/reconciliations/{ds}?gateway={g}"), &self.w.auditor).await)
                        .await;
                if s != 200 {
                    return Err(format!("the report of closed {g} {ds}: {s} {report}"));
                }
                let hash = report["report_hash"].as_str().unwrap_or_default().to_owned();
                self.closed.insert((g, d), hash);
                Ok(true)
            }
            (409, "day_closed") if was_closed => Ok(false),
            (409, "conflict" | "stale_run") if !was_closed => Ok(false),
            _ => Err(format!("close {g} {ds} (closed before: {was_closed}): {s} {v}")),
        }
    }

    /// The end of a history: the last date is over; every date is run, its exceptions resolved
    /// and approved, and closed, in date order.
    pub(super) async fn close_everything(&mut self) -> Step {
        self.today = LAST + 1;
        self.tick = 0;
        self.w.at(&self.now().to_rfc3339());
        self.log("every date is over".into());
        for d in 0..=LAST {
            for g in GATEWAYS {
                let mut attempts = 0;
                while !self.closed.contains_key(&(g, d)) {
                    attempts += 1;
                    if attempts > 6 {
                        return Err(format!("{g} {} does not close", date(d)));
                    }
                    self.run(g, d).await?;
                    self.settle_exceptions(g, d).await?;
                    self.close(g, d, None).await?;
                }
            }
        }
        Ok(())
    }

    /// Resolves every open exception of (gateway, date) with an action that applies, and
    /// approves every pending one.
    async fn settle_exceptions(&mut self, g: Gateway, d: usize) -> Step {
        let rows = self.exceptions().await?;
        for e in rows.into_iter().filter(|e| e.gateway == g && e.business_date == date(d)) {
            if e.state == ExceptionState::Open {
                let mut actions = candidates(e.category.as_str()).to_vec();
                actions.shuffle(&mut self.rng);
                let mut done = false;
                for a in actions {
                    if self.resolve(&e.exception_id, a).await? {
                        done = true;
                        break;
                    }
                }
                if !done {
                    return Err(format!("no action resolves {} ({})", e.exception_id, e.category));
                }
            }
            let now = self.w.app.store.get_exception(&e.exception_id).await.map_err(|e| e.to_string())?;
            if now.is_some_and(|e| e.state == ExceptionState::PendingApproval) {
                self.decide(&e.exception_id, true).await?;
            }
        }
        Ok(())
    }
}
