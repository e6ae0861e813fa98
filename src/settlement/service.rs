//! The finance workflow around reconciliation (SPEC §7.1–§7.3): importing settlement files,
//! running a (date, gateway), the exceptions and their four-eyes resolutions, and closing a day
//! with its settlement postings. Reads and writes through the store; the matching itself is the
//! pure `reconcile` module.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::{LineStatus, Profile};
use crate::domain::ledger::{self, Line, Posting};
use crate::domain::payment::{Gateway, GatewayEvent, OutcomeKind, PaymentStatus};
use crate::domain::{BusinessDate, CaseCode, Channel, Clock, Money, ProcedureCode, Subject, Timestamp, new_id};
use crate::fees::{Facts, FeeEngine};
use crate::gateway::{RawRequest, Reply};
use crate::reconcile::report::{FileRef, Inputs, ItemJson, Summary, digests, exceptions, report_hash};
use crate::reconcile::{Category, Closures, Item, LineIn, Outcome, PaymentIn, reconcile};
use crate::store::{
    AuditEvent, ExceptionChange, ExceptionRow, ItemRow, ReconData, RunRecord, SettlementFile, Store, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    /// A request that cannot be acted on as given (422 / exit 1).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The same file again (409).
    #[error("{0}")]
    Duplicate(String),
    /// The state does not allow it (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The (date, gateway) is closed (409 `day_closed`).
    #[error("{0}")]
    DayClosed(String),
    /// The same person may not approve or reject their own request (403).
    #[error("{0}")]
    FourEyes(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for FinanceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => FinanceError::Duplicate(m),
            other => FinanceError::Internal(anyhow::Error::new(other)),
        }
    }
}

type Result<T, E = FinanceError> = std::result::Result<T, E>;

/// A run and its report.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run: RunRecord,
    /// The report JSON as the API serves it (with each exception's state and resolution).
    pub report: Value,
    /// False when the day is closed and this is the stored run.
    pub new: bool,
}

/// What a run reads, loaded: the gateway's payments and lines, its files in import order and
/// its closed days.
/// Its text borrows from the `ReconData` the store returned.
struct Loaded<'a> {
    payments: Vec<PaymentIn<'a>>,
    lines: Vec<LineIn<'a>>,
    shas: Vec<String>,
    files: &'a [SettlementFile],
    closures: Closures,
}

/// Everything a computation of a (date, gateway) produced. Its items borrow from the `Loaded`.
struct Computed<'a> {
    outcome: Outcome<'a>,
    inputs: Inputs,
    summary: Summary,
    hash: String,
}

pub struct Finance {
    pub store: Arc<dyn Store>,
    pub fees: Arc<FeeEngine>,
    pub clock: Arc<dyn Clock>,
    pub profiles: PathBuf,
}

/// Actions finance can take on an exception (SPEC §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Refund,
    WriteOff,
    ConfirmFromSettlement,
    Accept,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refund" => Some(Action::Refund),
            "write_off" => Some(Action::WriteOff),
            "confirm_from_settlement" => Some(Action::ConfirmFromSettlement),
            "accept" => Some(Action::Accept),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Refund => "refund",
            Action::WriteOff => "write_off",
            Action::ConfirmFromSettlement => "confirm_from_settlement",
            Action::Accept => "accept",
        }
    }
    /// Whether it moves money, and so waits for a second finance user.
    pub fn moves_money(self) -> bool {
        self != Action::Accept
    }
}

fn vn_date(t: DateTime<Utc>) -> NaiveDate {
    BusinessDate::of(t).naive()
}

impl Finance {
    /// Imports a settlement file (SPEC §7.1): all or nothing.
    pub async fn import(
        &self,
        gateway: Gateway,
        profile: &str,
        name: &str,
        bytes: &[u8],
        actor: &str,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<SettlementFile> {
        let p = Profile::resolve(&self.profiles, profile).map_err(FinanceError::Invalid)?;
        let lines =
            super::parse(&p, bytes, &|n| progress(n)).map_err(|e| FinanceError::Invalid(format!("{name}: {e}")))?;
        let file = crate::store::NewSettlementFile {
            gateway: gateway.as_str(),
            profile: &p.name,
            name,
            bytes,
            imported_by: actor,
            lines: &lines,
        };
        let written = |n: usize| progress(n);
        Ok(self.store.import_settlement(&file, self.clock.now(), &written).await?)
    }

    fn expected(&self, r: &crate::store::recon::ReconPaymentRow<'_>) -> Option<i64> {
        let procedure = ProcedureCode::parse(r.procedure_code).ok()?;
        let channel: Channel = r.channel.parse().ok()?;
        let names: Vec<String> = serde_json::from_str(r.subjects).ok()?;
        let subjects: Vec<Subject> = names.iter().filter_map(|s| s.parse().ok()).collect();
        let names: Vec<String> = serde_json::from_str(r.facts).ok()?;
        let case_facts: Vec<crate::domain::Fact> = names.iter().filter_map(|s| s.parse().ok()).collect();
        let unit = crate::domain::UnitCode::parse(r.receiving_unit).ok()?;
        let facts = Facts {
            case_code: None,
            procedure_code: &procedure,
            channel,
            subjects: &subjects,
            case_facts: &case_facts,
            receiving_unit: Some(&unit),
            quantity: u32::try_from(r.quantity).ok()?,
            as_of: vn_date(r.received_at),
        };
        self.fees.quote(&facts).ok().map(|q| q.citizen_due.dong())
    }

    /// Turns what the store read into the matcher's inputs, borrowing its text.
    fn inputs<'a>(&self, data: &'a ReconData) -> Result<Loaded<'a>> {
        // Cases of one procedure, channel, subjects, facts, unit, quantity and date have one quote.
        type QuoteKey<'k> = (&'k str, &'k str, &'k str, &'k str, &'k str, i64, NaiveDate);
        let mut quotes: HashMap<QuoteKey<'_>, Option<i64>> = HashMap::new();
        let mut payments = Vec::new();
        for r in data.payments() {
            let r = r?;
            let status: PaymentStatus = r.status.parse().unwrap_or(PaymentStatus::Pending);
            let key = (
                r.procedure_code,
                r.channel,
                r.subjects,
                r.facts,
                r.receiving_unit,
                r.quantity,
                vn_date(r.received_at),
            );
            let expected = match quotes.get(&key) {
                Some(e) => *e,
                None => {
                    let e = self.expected(&r);
                    quotes.insert(key, e);
                    e
                }
            };
            payments.push(PaymentIn {
                business_date: if status == PaymentStatus::Paid { r.paid_at.map(vn_date) } else { None },
                payment_id: r.payment_id,
                case_code: r.case_code,
                case_version: r.case_version,
                txn_ref: r.txn_ref,
                gateway_txn_no: r.gateway_txn_no,
                amount: r.amount,
                status,
                confirmed_at: r.confirmed_at,
                duplicate: r.duplicate,
                expected,
                phi: r.phi_due,
                le_phi: r.le_phi_due,
            });
        }
        let index: HashMap<i64, usize> = data.files.iter().enumerate().map(|(i, f)| (f.import_seq, i)).collect();
        let now = self.clock.now();
        let mut lines = Vec::new();
        for l in data.lines() {
            let l = l?;
            let file = index.get(&l.file_seq).copied().unwrap_or(usize::MAX);
            lines.push(LineIn {
                file,
                line_no: usize::try_from(l.line_no).unwrap_or(0),
                arrived_at: data.files.get(file).map_or(now, |f| f.imported_at),
                gateway_txn_no: l.gateway_txn_no,
                txn_ref: l.txn_ref,
                amount: l.amount,
                fee: l.fee,
                status: if l.refund { LineStatus::Refund } else { LineStatus::Success },
                business_date: l.business_date,
            });
        }
        Ok(Loaded {
            payments,
            lines,
            shas: data.files.iter().map(|f| f.sha256.clone()).collect(),
            files: &data.files,
            closures: data.closures.iter().copied().collect(),
        })
    }

    fn compute<'a>(&self, l: &'a Loaded<'_>, date: NaiveDate, gateway: Gateway) -> Computed<'a> {
        let outcome = reconcile(gateway.as_str(), date, &l.payments, &l.lines, &l.shas, &l.closures);
        let (payments_digest, cases_digest) = digests(&outcome, &l.payments);
        let inputs = Inputs {
            settlement_files: outcome
                .files
                .iter()
                .filter_map(|i| l.files.get(*i))
                .map(|f| FileRef { name: f.name.clone(), sha256: f.sha256.clone() })
                .collect(),
            policy_hash: self.fees.policy.hash.clone(),
            payments_digest,
            cases_digest,
        };
        let summary = Summary::from(&outcome);
        let day = date.format("%Y-%m-%d").to_string();
        let hash = report_hash(&day, gateway.as_str(), &inputs, &summary, &outcome.totals, &outcome);
        Computed { outcome, inputs, summary, hash }
    }

    /// The report JSON (without states) of a computation, as stored.
    fn stored_report(date: NaiveDate, gateway: Gateway, run_id: &str, c: &Computed<'_>) -> String {
        let items: Vec<ItemJson<'_>> = exceptions(&c.outcome).map(|i| ItemJson::of(i, None)).collect();
        json!({
            "business_date": date.format("%Y-%m-%d").to_string(),
            "gateway": gateway.as_str(),
            "run_id": run_id,
            "report_hash": c.hash,
            "inputs": c.inputs,
            "summary": c.summary,
            "totals": c.outcome.totals,
            "items": items,
        })
        .to_string()
    }

    /// The served report: the stored one with each exception's state and resolution.
    fn served(report: &str, states: &HashMap<String, ExceptionRow>) -> Value {
        let mut v: Value = serde_json::from_str(report).unwrap_or(Value::Null);
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                let Some(obj) = item.as_object_mut() else { continue };
                let key = obj.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
                let (state, resolution) = match states.get(&key) {
                    Some(e) => (e.state.clone(), exception_view(e)),
                    None => ("open".to_owned(), Value::Null),
                };
                // Rebuild in the SPEC's order: state and resolution after expected_amount.
                let mut out = serde_json::Map::new();
                for (k, val) in std::mem::take(obj) {
                    let after = k == "expected_amount";
                    out.insert(k, val);
                    if after {
                        out.insert("state".into(), Value::String(state.clone()));
                        out.insert("resolution".into(), resolution.clone());
                    }
                }
                *obj = out;
            }
        }
        v
    }

    async fn states(&self, gateway: &str) -> Result<HashMap<String, ExceptionRow>> {
        Ok(self.store.gateway_exceptions(gateway).await?.into_iter().map(|e| (e.exception_id.clone(), e)).collect())
    }

    /// Runs a (date, gateway), or returns the stored run when it is closed.
    pub async fn run(&self, date: NaiveDate, gateway: Gateway, actor: &str) -> Result<RunView> {
        if self.store.closure(date, gateway.as_str()).await?.is_some() {
            let run = self
                .store
                .latest_run(date, gateway.as_str())
                .await?
                .ok_or_else(|| FinanceError::NotFound("no run".into()))?;
            let states = self.states(gateway.as_str()).await?;
            return Ok(RunView { report: Self::served(&run.report, &states), run, new: false });
        }
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let data = self.store.recon_data(gateway.as_str()).await?;
            let loaded = self.inputs(&data)?;
            let loaded_at = started.elapsed();
            let c = self.compute(&loaded, date, gateway);
            let computed_at = started.elapsed();
            let now = self.clock.now();
            let run_id = new_id("run");
            let run = RunRecord {
                run_id: run_id.clone(),
                business_date: date,
                gateway: gateway.as_str().to_owned(),
                created_at: Timestamp::at(now).0,
                created_by: actor.to_owned(),
                report_hash: c.hash.clone(),
                report: Self::stored_report(date, gateway, &run_id, &c),
            };
            let states = self.states(gateway.as_str()).await?;
            let changes = self.carry_over(date, gateway, &c.outcome, &states).await?;
            let prepared_at = started.elapsed();
            let saved = self.store.save_run(&run, &c.outcome.items, &changes, now).await?;
            tracing::info!(
                date = %date, gateway = gateway.as_str(), payments = loaded.payments.len(),
                lines = loaded.lines.len(), items = c.outcome.items.len(),
                load_ms = loaded_at.as_millis() as u64, compute_ms = (computed_at - loaded_at).as_millis() as u64,
                prepare_ms = (prepared_at - computed_at).as_millis() as u64,
                store_ms = (started.elapsed() - prepared_at).as_millis() as u64,
                "reconciliation run"
            );
            if saved {
                let states = self.states(gateway.as_str()).await?;
                return Ok(RunView { report: Self::served(&run.report, &states), run, new: true });
            }
        }
        Err(FinanceError::Conflict("exceptions kept changing during the run; try again".into()))
    }

    /// New exceptions open; a resolution carries over while key and category stay; a changed
    /// category reopens the exception and reverses the money its resolution moved.
    async fn carry_over(
        &self,
        date: NaiveDate,
        gateway: Gateway,
        o: &Outcome<'_>,
        states: &HashMap<String, ExceptionRow>,
    ) -> Result<Vec<ExceptionChange>> {
        let mut changes = Vec::new();
        for item in exceptions(o) {
            let category = item.category.as_str();
            match states.get(&item.key) {
                None => changes.push(ExceptionChange {
                    exception_id: item.key.clone(),
                    from_state: None,
                    gateway: gateway.as_str().to_owned(),
                    business_date: date,
                    category: category.to_owned(),
                    state: "open".into(),
                    resolution: None,
                    posting: None,
                    keep_posting: false,
                    rejection: None,
                }),
                Some(e) if e.category == category && e.business_date == date => {}
                Some(e) => {
                    let reversal = match &e.posting_id {
                        Some(pid) => Some(self.reversal(pid, date).await?),
                        None => None,
                    };
                    changes.push(ExceptionChange {
                        exception_id: item.key.clone(),
                        from_state: Some(e.state.clone()),
                        gateway: gateway.as_str().to_owned(),
                        business_date: date,
                        category: category.to_owned(),
                        state: "open".into(),
                        resolution: None,
                        posting: reversal,
                        keep_posting: false,
                        rejection: Some(json!({
                            "reopened": format!("category changed from {} to {category}", e.category),
                            "previous_resolution": e.resolution.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
                        })),
                    });
                }
            }
        }
        Ok(changes)
    }

    /// A posting that undoes `posting_id`, referencing it.
    async fn reversal(&self, posting_id: &str, date: NaiveDate) -> Result<Posting> {
        let entries = self.store.posting_entries(posting_id).await?;
        Ok(Posting {
            idem_key: format!("reversal:{posting_id}"),
            kind: "correction".into(),
            business_date: date,
            refs: format!("corrects={posting_id}"),
            corrects: Some(posting_id.to_owned()),
            lines: entries
                .iter()
                .map(|e| Line {
                    account: e.account.clone(),
                    debit: e.credit,
                    credit: e.debit,
                    memo: format!("reverses: {}", e.memo),
                })
                .collect(),
        })
    }

    /// The latest run of a (date, gateway) with its served report.
    pub async fn report(&self, date: NaiveDate, gateway: Gateway) -> Result<RunView> {
        let run = self
            .store
            .latest_run(date, gateway.as_str())
            .await?
            .ok_or_else(|| FinanceError::NotFound(format!("no reconciliation of {date} for {gateway} yet")))?;
        let states = self.states(gateway.as_str()).await?;
        Ok(RunView { report: Self::served(&run.report, &states), run, new: false })
    }

    /// A page of a run's items.
    pub async fn items(
        &self,
        run_id: &str,
        category: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        Ok(self.store.run_items(run_id, category, false, after, limit).await?)
    }

    /// The exception and the item it is, from the latest run of its (date, gateway).
    async fn exception_item(&self, id: &str) -> Result<(ExceptionRow, ItemRow)> {
        let e =
            self.store.get_exception(id).await?.ok_or_else(|| FinanceError::NotFound(format!("no exception {id}")))?;
        if self.store.closure(e.business_date, &e.gateway).await?.is_some() {
            return Err(FinanceError::DayClosed(format!("{} for {} is closed", e.business_date, e.gateway)));
        }
        let run = self
            .store
            .latest_run(e.business_date, &e.gateway)
            .await?
            .ok_or_else(|| FinanceError::NotFound("no run".into()))?;
        let item =
            self.store.run_item(&run.run_id, id).await?.filter(|i| i.category != "matched").ok_or_else(|| {
                FinanceError::Conflict(format!("{id} is not an exception of the latest run of {}", e.business_date))
            })?;
        Ok((e, item))
    }

    /// Where an exception's money sits, and so what a refund or write-off posts.
    fn movement(action: Action, item: &ItemRow, gateway: &str) -> Result<Option<Vec<Line>>> {
        let clearing = format!("gateway_clearing:{gateway}");
        let settled = item.settled_amount.unwrap_or(0);
        let recorded = item.recorded_amount.unwrap_or(0);
        let bad =
            || FinanceError::Invalid(format!("{} does not apply to a {} exception", action.as_str(), item.category));
        let pair = |dr: &str, cr: &str, amount: i64, memo: &str| {
            vec![Line::debit(dr, amount, memo.to_owned()), Line::credit(cr, amount, memo.to_owned())]
        };
        let memo = format!("{} of {}", action.as_str(), item.item_key);
        let lines = match (action, Category::parse(&item.category)) {
            (Action::Accept, _) | (Action::ConfirmFromSettlement, _) => return Ok(None),
            // Money the gateway settled without a paid payment sits in suspense.
            (Action::Refund, Some(Category::MissingInRecords | Category::UnconfirmedInRecords)) => {
                pair(ledger::SUSPENSE, ledger::REFUNDS_PAYABLE, settled, &memo)
            }
            (Action::WriteOff, Some(Category::MissingInRecords | Category::UnconfirmedInRecords)) => {
                pair(ledger::SUSPENSE, ledger::WRITE_OFFS, settled, &memo)
            }
            // A flagged duplicate is owed back already (refunds payable at confirmation).
            (Action::Refund, Some(Category::DuplicatePayment)) => return Ok(None),
            (Action::WriteOff, Some(Category::DuplicatePayment)) if item.line_status.is_some() => {
                pair(ledger::REFUNDS_PAYABLE, ledger::WRITE_OFFS, settled, &memo)
            }
            (Action::WriteOff, Some(Category::DuplicatePayment | Category::MissingInSettlement)) => {
                pair(ledger::WRITE_OFFS, &clearing, recorded, &memo)
            }
            (Action::WriteOff, Some(Category::AmountMismatch)) if recorded > settled => {
                pair(ledger::WRITE_OFFS, &clearing, recorded - settled, &memo)
            }
            (Action::WriteOff, Some(Category::AmountMismatch)) if settled > recorded => {
                pair(&clearing, ledger::WRITE_OFFS, settled - recorded, &memo)
            }
            (Action::Refund, Some(Category::AmountMismatch)) if settled > recorded => {
                pair(&clearing, ledger::REFUNDS_PAYABLE, settled - recorded, &memo)
            }
            (Action::Refund, Some(Category::FeeMismatch)) if recorded > item.expected_amount.unwrap_or(recorded) => {
                let over = recorded - item.expected_amount.unwrap_or(recorded);
                pair(ledger::REVENUE_LE_PHI, ledger::REFUNDS_PAYABLE, over, &memo)
            }
            _ => return Err(bad()),
        };
        Ok(Some(lines))
    }

    fn check_action(action: Action, item: &ItemRow, case_code: Option<&str>) -> Result<()> {
        if action == Action::ConfirmFromSettlement {
            match Category::parse(&item.category) {
                Some(Category::UnconfirmedInRecords) => {}
                Some(Category::MissingInRecords) if case_code.is_some() => {}
                Some(Category::MissingInRecords) => {
                    return Err(FinanceError::Invalid("case_code: required to confirm a line no payment has".into()));
                }
                _ => {
                    return Err(FinanceError::Invalid(format!(
                        "confirm_from_settlement does not apply to a {} exception",
                        item.category
                    )));
                }
            }
        }
        Self::movement(action, item, "x").map(|_| ())
    }

    /// `POST /api/v1/exceptions/{id}/resolve`.
    pub async fn resolve(
        &self,
        id: &str,
        action: &str,
        note: &str,
        case_code: Option<&str>,
        actor: &str,
    ) -> Result<ExceptionRow> {
        let action = Action::parse(action).ok_or_else(|| {
            FinanceError::Invalid("action: must be refund, write_off, confirm_from_settlement or accept".into())
        })?;
        if let Some(c) = case_code {
            CaseCode::parse(c).map_err(|e| FinanceError::Invalid(format!("case_code: {e}")))?;
        }
        let (e, item) = self.exception_item(id).await?;
        if e.state != "open" {
            return Err(FinanceError::Conflict(format!(
                "{id} is {} (only an open exception can be resolved)",
                e.state
            )));
        }
        Self::check_action(action, &item, case_code)?;
        let now = self.clock.now();
        let request = json!({"action": action.as_str(), "note": note, "case_code": case_code, "requested_by": actor, "requested_at": Timestamp::at(now)});
        let state = if action.moves_money() { "pending_approval" } else { "resolved" };
        let change = ExceptionChange {
            exception_id: id.to_owned(),
            from_state: Some(e.state.clone()),
            gateway: e.gateway.clone(),
            business_date: e.business_date,
            category: e.category.clone(),
            state: state.into(),
            resolution: Some(request.clone()),
            posting: None,
            keep_posting: true,
            rejection: e.rejection.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        };
        let audit = AuditEvent {
            actor: actor.to_owned(),
            action: "exception.resolve".into(),
            subject: id.to_owned(),
            details: request,
        };
        if !self.store.change_exceptions(&[change], &[audit], now).await? {
            return Err(FinanceError::Conflict(format!("{id} changed meanwhile; look again")));
        }
        self.store.get_exception(id).await?.ok_or_else(|| FinanceError::NotFound(id.to_owned()))
    }

    /// `POST /api/v1/exceptions/{id}/approve` (`approve = true`) or `/reject`.
    pub async fn decide(&self, id: &str, approve: bool, note: Option<&str>, actor: &str) -> Result<ExceptionRow> {
        let (e, item) = self.exception_item(id).await?;
        if e.state != "pending_approval" {
            return Err(FinanceError::Conflict(format!("{id} is {} (nothing awaits approval)", e.state)));
        }
        let request: Value = e.resolution.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
        if request["requested_by"].as_str() == Some(actor) {
            return Err(FinanceError::FourEyes(format!(
                "{actor} requested this {}; another finance user must decide",
                request["action"].as_str().unwrap_or("action")
            )));
        }
        let now = self.clock.now();
        let verb = if approve { "approve" } else { "reject" };
        let audit = AuditEvent {
            actor: actor.to_owned(),
            action: format!("exception.{verb}"),
            subject: id.to_owned(),
            details: json!({"action": request["action"], "note": note}),
        };
        let change = if approve {
            let action = request["action"].as_str().and_then(Action::parse).unwrap_or(Action::Accept);
            let mut resolution = request.clone();
            resolution["approved_by"] = json!(actor);
            resolution["approved_at"] = json!(Timestamp::at(now));
            let posting = match Self::movement(action, &item, &e.gateway)? {
                Some(lines) => Some(Posting {
                    idem_key: format!("resolution:{id}:{}", now.timestamp_micros()),
                    kind: action.as_str().into(),
                    business_date: e.business_date,
                    refs: format!("exception={id};item_payment={}", item.payment_id.as_deref().unwrap_or("")),
                    corrects: None,
                    lines,
                }),
                None => None,
            };
            if action == Action::ConfirmFromSettlement {
                let paid = self.confirm_from_line(&e, &item, request["case_code"].as_str(), actor).await?;
                resolution["payment_id"] = json!(paid);
            }
            ExceptionChange {
                exception_id: id.to_owned(),
                from_state: Some(e.state.clone()),
                gateway: e.gateway.clone(),
                business_date: e.business_date,
                category: e.category.clone(),
                state: "resolved".into(),
                resolution: Some(resolution),
                keep_posting: posting.is_none(),
                posting,
                rejection: e.rejection.as_deref().and_then(|r| serde_json::from_str(r).ok()),
            }
        } else {
            ExceptionChange {
                exception_id: id.to_owned(),
                from_state: Some(e.state.clone()),
                gateway: e.gateway.clone(),
                business_date: e.business_date,
                category: e.category.clone(),
                state: "open".into(),
                resolution: None,
                posting: None,
                keep_posting: true,
                rejection: Some(json!({"rejected": request, "by": actor, "at": Timestamp::at(now), "note": note})),
            }
        };
        if !self.store.change_exceptions(&[change], &[audit], now).await? {
            return Err(FinanceError::Conflict(format!("{id} changed meanwhile; look again")));
        }
        self.store.get_exception(id).await?.ok_or_else(|| FinanceError::NotFound(id.to_owned()))
    }

    /// Records the payment a settlement line proves: the existing unconfirmed one, or a new one
    /// for the given case. Goes through the same write path as a gateway callback (its posting,
    /// its notification). Returns the payment id.
    async fn confirm_from_line(
        &self,
        e: &ExceptionRow,
        item: &ItemRow,
        case_code: Option<&str>,
        actor: &str,
    ) -> Result<String> {
        let gateway: Gateway =
            e.gateway.parse().map_err(|err: crate::domain::UnknownTag| FinanceError::Invalid(err.to_string()))?;
        let no = item.gateway_txn_no.clone().unwrap_or_default();
        let line = self
            .store
            .settlement_line(gateway.as_str(), &no, "success")
            .await?
            .ok_or_else(|| FinanceError::NotFound(format!("no settlement line {no}")))?;
        let payment_id = match &item.payment_id {
            Some(p) => p.clone(),
            None => {
                let code = CaseCode::parse(case_code.unwrap_or_default())
                    .map_err(|err| FinanceError::Invalid(format!("case_code: {err}")))?;
                let stored = self
                    .store
                    .get_case(&code)
                    .await?
                    .ok_or_else(|| FinanceError::NotFound(format!("no case {code}")))?;
                let facts = Facts::of_case(&stored.case);
                let quote = self.fees.quote(&facts).map_err(|err| FinanceError::Invalid(err.to_string()))?;
                let now = self.clock.now();
                let payment = crate::store::Payment {
                    payment_id: new_id("pay"),
                    case_code: code.to_string(),
                    case_version: stored.version,
                    gateway,
                    txn_ref: Some(line.txn_ref.clone()),
                    amount: Money::new(line.amount).map_err(|err| FinanceError::Invalid(err.to_string()))?,
                    budget_amount: quote.budget_due,
                    status: PaymentStatus::Pending,
                    gateway_txn_no: None,
                    paid_at: None,
                    pay_url: None,
                    return_url: "settlement".into(),
                    client_ip: "0.0.0.0".into(),
                    created_by: actor.to_owned(),
                    idempotency_key: format!("settlement:{}", e.exception_id),
                    quote: quote.to_json(),
                    created_at: Timestamp::at(line.txn_time).0,
                    expires_at: Timestamp::at(line.txn_time).0,
                    flags: vec![],
                };
                match self.store.create_payment(&crate::store::NewPayment { payment, posting: None }, now).await? {
                    crate::store::CreatePayment::Created(p) | crate::store::CreatePayment::Existing(p) => p.payment_id,
                    crate::store::CreatePayment::KeyReused | crate::store::CreatePayment::CaseAlreadyPaid => {
                        return Err(FinanceError::Conflict(format!("case {code} already holds a settled payment")));
                    }
                }
            }
        };
        let body = json!({"file_id": line.file_id, "line_no": line.line_no, "gateway_txn_no": line.gateway_txn_no,
            "txn_ref": line.txn_ref, "amount": line.amount, "fee": line.fee, "txn_time": Timestamp::at(line.txn_time), "exception": e.exception_id});
        let job = crate::store::EventJob {
            callback_id: new_id("cb"),
            source: "settlement",
            gateway,
            raw: RawRequest {
                method: "SETTLEMENT".into(),
                path: format!("/exceptions/{}", e.exception_id),
                body: body.to_string().into_bytes(),
                ..Default::default()
            },
            received_at: self.clock.now(),
            key_used: Some("settlement"),
            event: Some(GatewayEvent {
                gateway,
                txn_ref: line.txn_ref.clone(),
                gateway_txn_no: Some(line.gateway_txn_no.clone()),
                amount: Money::new(line.amount).map_err(|err| FinanceError::Invalid(err.to_string()))?,
                outcome: OutcomeKind::Success,
                paid_at: Some(line.txn_time),
            }),
            refusal: None,
            claimed_txn_ref: None,
        };
        let r = self.store.process_gateway_events(&[job], self.clock.now()).await?;
        match r.first().map(|r| r.reply) {
            Some(Reply::Applied | Reply::AlreadyConfirmed) => Ok(payment_id),
            Some(Reply::InvalidAmount) => {
                Err(FinanceError::Invalid("the line's amount differs from the payment's; resolve it otherwise".into()))
            }
            other => Err(FinanceError::Conflict(format!("the payment could not be confirmed ({other:?})"))),
        }
    }

    /// `POST /api/v1/days/{date}/close`: only when the latest run is current and every exception
    /// of it is resolved; posts the settlement of each line once.
    pub async fn close(&self, date: NaiveDate, gateway: Gateway, actor: &str) -> Result<RunView> {
        if self.store.closure(date, gateway.as_str()).await?.is_some() {
            return Err(FinanceError::DayClosed(format!("{date} for {gateway} is already closed")));
        }
        let run = self
            .store
            .latest_run(date, gateway.as_str())
            .await?
            .ok_or_else(|| FinanceError::Conflict(format!("{date} for {gateway} has no reconciliation run yet")))?;
        let data = self.store.recon_data(gateway.as_str()).await?;
        let loaded = self.inputs(&data)?;
        let c = self.compute(&loaded, date, gateway);
        if c.hash != run.report_hash {
            return Err(FinanceError::Conflict(
                "payments or settlement lines changed since the last run: run the reconciliation again before closing"
                    .into(),
            ));
        }
        let states = self.states(gateway.as_str()).await?;
        let unresolved: Vec<&str> = exceptions(&c.outcome)
            .filter(|i| states.get(&i.key).is_none_or(|e| e.state != "resolved"))
            .map(|i| i.key.as_str())
            .collect();
        if !unresolved.is_empty() {
            return Err(FinanceError::Conflict(format!(
                "{} exception(s) are open or pending approval, e.g. {}",
                unresolved.len(),
                unresolved.iter().take(3).copied().collect::<Vec<_>>().join(", ")
            )));
        }
        let postings: Vec<Posting> =
            c.outcome.items.iter().filter(|i| i.is_first_line()).map(|i| settlement_posting(gateway, i)).collect();
        if !self.store.close_day(date, gateway.as_str(), &run.run_id, actor, &postings, self.clock.now()).await? {
            return Err(FinanceError::DayClosed(format!("{date} for {gateway} is already closed")));
        }
        self.report(date, gateway).await
    }
}

/// The settlement posting of a first-occurrence line: success lines Dr bank (amount − fee),
/// Dr gateway fees, Cr the gateway's clearing account, or suspense when the line settles no paid
/// payment; refund lines Dr refunds payable, Cr bank.
pub fn settlement_posting(gateway: Gateway, i: &Item<'_>) -> Posting {
    let amount = i.settled_amount.unwrap_or(0);
    let fee = i.fee.unwrap_or(0);
    let no = i.gateway_txn_no.unwrap_or("");
    let status = i.line_status.map_or("success", |s| s.as_str());
    let memo = format!("settlement {no} ({})", i.txn_ref.unwrap_or(""));
    let lines = if i.line_status == Some(LineStatus::Refund) {
        vec![
            Line::debit(ledger::REFUNDS_PAYABLE, amount, memo.clone()),
            Line::credit(ledger::bank(gateway), amount, memo),
        ]
    } else {
        let mut l = vec![Line::debit(ledger::bank(gateway), amount - fee, memo.clone())];
        if fee > 0 {
            l.push(Line::debit(ledger::GATEWAY_FEES, fee, memo.clone()));
        }
        let cr = if i.settles_payment { ledger::clearing(gateway) } else { ledger::SUSPENSE.to_owned() };
        l.push(Line::credit(cr, amount, memo));
        l
    };
    Posting {
        idem_key: format!("settle:{gateway}:{no}:{status}"),
        kind: "settlement".into(),
        business_date: i.business_date,
        refs: format!("item={};payment={}", i.key, i.payment_id.unwrap_or("")),
        corrects: None,
        lines,
    }
}

/// An exception's resolution as the API shows it.
pub fn exception_view(e: &ExceptionRow) -> Value {
    let parse =
        |s: &Option<String>| s.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()).unwrap_or(Value::Null);
    let mut r = parse(&e.resolution);
    if r.is_null() && e.rejection.is_none() {
        return Value::Null;
    }
    if let Some(obj) = r.as_object_mut() {
        obj.insert("posting_id".into(), json!(e.posting_id));
    } else if e.rejection.is_some() {
        r = json!({});
    }
    if let (Some(obj), Some(_)) = (r.as_object_mut(), &e.rejection) {
        obj.insert("last_rejection".into(), parse(&e.rejection));
    }
    r
}
