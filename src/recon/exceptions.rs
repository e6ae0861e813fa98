//! Exceptions and their resolutions (SPEC §7.3): a finance user resolves; a resolution that moves
//! money waits for a different finance user's approval (four eyes), which makes its posting; a
//! rejection returns the exception to `open`. Every change is audited in its transaction.

use serde_json::{Value, json};

use super::{Finance, FinanceError, Planned, Result, apply_planned};
use crate::domain::ledger::{self, Line, Posting};
use crate::domain::payment::Gateway;
use crate::domain::recon::{Category, ExceptionState, LineStatus};
use crate::domain::{CaseCode, Money, Timestamp, new_id};
use crate::fees::Facts;
use crate::payments::{Job, SettlementProof};
use crate::store::{AuditEvent, ExceptionChange, ExceptionRow, ItemRow, NewPayment, Payment};

pub use crate::domain::recon::Action;

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

/// Where an exception's money sits, and so what a refund or write-off posts.
fn movement(action: Action, item: &ItemRow, gateway: Gateway) -> Result<Option<Vec<Line>>> {
    let clearing = ledger::clearing(gateway);
    let settled = item.settled_amount.unwrap_or(0);
    let recorded = item.recorded_amount.unwrap_or(0);
    let bad = || FinanceError::Invalid(format!("{action} does not apply to a {} exception", item.category));
    let pair = |dr: &str, cr: &str, amount: i64, memo: &str| {
        vec![Line::debit(dr, amount, memo.to_owned()), Line::credit(cr, amount, memo.to_owned())]
    };
    let memo = format!("{action} of {}", item.item_key);
    let lines = match (action, item.category) {
        (Action::Accept, _) | (Action::ConfirmFromSettlement, _) => return Ok(None),
        // Money the gateway settled without a paid payment sits in suspense.
        (Action::Refund, Category::MissingInRecords | Category::UnconfirmedInRecords) => {
            pair(ledger::SUSPENSE, ledger::REFUNDS_PAYABLE, settled, &memo)
        }
        (Action::WriteOff, Category::MissingInRecords | Category::UnconfirmedInRecords) => {
            pair(ledger::SUSPENSE, ledger::WRITE_OFFS, settled, &memo)
        }
        // A flagged duplicate is owed back already (refunds payable at confirmation).
        (Action::Refund, Category::DuplicatePayment) => return Ok(None),
        (Action::WriteOff, Category::DuplicatePayment) if item.line_status.is_some() => {
            pair(ledger::REFUNDS_PAYABLE, ledger::WRITE_OFFS, settled, &memo)
        }
        (Action::WriteOff, Category::DuplicatePayment | Category::MissingInSettlement) => {
            pair(ledger::WRITE_OFFS, &clearing, recorded, &memo)
        }
        (Action::WriteOff, Category::AmountMismatch) if recorded > settled => {
            pair(ledger::WRITE_OFFS, &clearing, recorded - settled, &memo)
        }
        (Action::WriteOff, Category::AmountMismatch) if settled > recorded => {
            pair(&clearing, ledger::WRITE_OFFS, settled - recorded, &memo)
        }
        (Action::Refund, Category::AmountMismatch) if settled > recorded => {
            pair(&clearing, ledger::REFUNDS_PAYABLE, settled - recorded, &memo)
        }
        (Action::Refund, Category::FeeMismatch) if recorded > item.expected_amount.unwrap_or(recorded) => {
            let over = recorded - item.expected_amount.unwrap_or(recorded);
            pair(ledger::REVENUE_LE_PHI, ledger::REFUNDS_PAYABLE, over, &memo)
        }
        _ => return Err(bad()),
    };
    Ok(Some(lines))
}

fn check_action(action: Action, item: &ItemRow, case_code: Option<&str>) -> Result<()> {
    if action == Action::ConfirmFromSettlement {
        match item.category {
            Category::UnconfirmedInRecords => {}
            Category::MissingInRecords if case_code.is_some() => {}
            Category::MissingInRecords => {
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
    movement(action, item, Gateway::Vnpay).map(|_| ())
}

fn json_of(s: &Option<String>) -> Option<Value> {
    s.as_deref().and_then(|r| serde_json::from_str(r).ok())
}

impl Finance {
    /// The exception and the item it is, from the latest run of its (date, gateway).
    async fn exception_item(&self, id: &str) -> Result<(ExceptionRow, ItemRow)> {
        let e =
            self.store.get_exception(id).await?.ok_or_else(|| FinanceError::NotFound(format!("no exception {id}")))?;
        if self.store.closure(e.business_date, e.gateway).await?.is_some() {
            return Err(FinanceError::DayClosed(format!("{} for {} is closed", e.business_date, e.gateway)));
        }
        let run = self
            .store
            .latest_run(e.business_date, e.gateway)
            .await?
            .ok_or_else(|| FinanceError::NotFound("no run".into()))?;
        let item = self.store.run_item(&run.run_id, id).await?.filter(|i| i.category != Category::Matched).ok_or_else(
            || FinanceError::Conflict(format!("{id} is not an exception of the latest run of {}", e.business_date)),
        )?;
        Ok((e, item))
    }

    /// Writes one exception change with its posting and audit entry; a concurrent change is 409.
    async fn change(&self, planned: Planned, audit: AuditEvent) -> Result<ExceptionRow> {
        let id = planned.change.exception_id.clone();
        let mut tx = self.store.write().await?;
        if !apply_planned(&mut tx, vec![planned], &[audit], self.clock.now()).await? {
            return Err(FinanceError::Conflict(format!("{id} changed meanwhile; look again")));
        }
        tx.commit().await?;
        self.store.get_exception(&id).await?.ok_or(FinanceError::NotFound(id))
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
        let action: Action = action.parse().map_err(|_| {
            FinanceError::Invalid("action: must be refund, write_off, confirm_from_settlement or accept".into())
        })?;
        if let Some(c) = case_code {
            CaseCode::parse(c).map_err(|e| FinanceError::Invalid(format!("case_code: {e}")))?;
        }
        let (e, item) = self.exception_item(id).await?;
        if e.state != ExceptionState::Open {
            return Err(FinanceError::Conflict(format!(
                "{id} is {} (only an open exception can be resolved)",
                e.state
            )));
        }
        check_action(action, &item, case_code)?;
        let now = self.clock.now();
        let request = json!({"action": action, "note": note, "case_code": case_code, "requested_by": actor, "requested_at": Timestamp::at(now)});
        let state = if action.moves_money() { ExceptionState::PendingApproval } else { ExceptionState::Resolved };
        let change = ExceptionChange {
            exception_id: id.to_owned(),
            from_state: Some(e.state),
            gateway: e.gateway,
            business_date: e.business_date,
            category: e.category,
            state,
            resolution: Some(request.clone()),
            posting_id: None,
            keep_posting: true,
            rejection: json_of(&e.rejection),
        };
        self.change(Planned { change, posting: None }, AuditEvent::new(actor, "exception.resolve", id, request)).await
    }

    /// `POST /api/v1/exceptions/{id}/approve` (`approve = true`) or `/reject`.
    pub async fn decide(&self, id: &str, approve: bool, note: Option<&str>, actor: &str) -> Result<ExceptionRow> {
        let (e, item) = self.exception_item(id).await?;
        if e.state != ExceptionState::PendingApproval {
            return Err(FinanceError::Conflict(format!("{id} is {} (nothing awaits approval)", e.state)));
        }
        let request: Value = json_of(&e.resolution).unwrap_or(Value::Null);
        if request["requested_by"].as_str() == Some(actor) {
            return Err(FinanceError::FourEyes(format!(
                "{actor} requested this {}; another finance user must decide",
                request["action"].as_str().unwrap_or("action")
            )));
        }
        let now = self.clock.now();
        let verb = if approve { "approve" } else { "reject" };
        let audit = AuditEvent::new(
            actor,
            &format!("exception.{verb}"),
            id,
            json!({"action": request["action"], "note": note}),
        );
        let planned = if approve {
            let action = request["action"].as_str().and_then(|a| a.parse().ok()).unwrap_or(Action::Accept);
            let mut resolution = request.clone();
            resolution["approved_by"] = json!(actor);
            resolution["approved_at"] = json!(Timestamp::at(now));
            let posting = movement(action, &item, e.gateway)?.map(|lines| Posting {
                idem_key: format!("resolution:{id}:{}", now.timestamp_micros()),
                kind: action.as_str().into(),
                business_date: e.business_date,
                refs: format!("exception={id};item_payment={}", item.payment_id.as_deref().unwrap_or("")),
                corrects: None,
                lines,
            });
            if action == Action::ConfirmFromSettlement {
                let paid = self.confirm_from_line(&e, &item, request["case_code"].as_str(), actor).await?;
                resolution["payment_id"] = json!(paid);
            }
            Planned {
                change: ExceptionChange {
                    exception_id: id.to_owned(),
                    from_state: Some(e.state),
                    gateway: e.gateway,
                    business_date: e.business_date,
                    category: e.category,
                    state: ExceptionState::Resolved,
                    resolution: Some(resolution),
                    keep_posting: posting.is_none(),
                    posting_id: None,
                    rejection: json_of(&e.rejection),
                },
                posting,
            }
        } else {
            Planned {
                change: ExceptionChange {
                    exception_id: id.to_owned(),
                    from_state: Some(e.state),
                    gateway: e.gateway,
                    business_date: e.business_date,
                    category: e.category,
                    state: ExceptionState::Open,
                    resolution: None,
                    posting_id: None,
                    keep_posting: true,
                    rejection: Some(json!({"rejected": request, "by": actor, "at": Timestamp::at(now), "note": note})),
                },
                posting: None,
            }
        };
        self.change(planned, audit).await
    }

    /// Records the payment a settlement line proves: the existing unconfirmed one, or a new one
    /// for the given case. It is applied by the payment committer like any payment outcome (its
    /// posting, its notification). Returns the payment id.
    async fn confirm_from_line(
        &self,
        e: &ExceptionRow,
        item: &ItemRow,
        case_code: Option<&str>,
        actor: &str,
    ) -> Result<String> {
        let gateway = e.gateway;
        let no = item.gateway_txn_no.clone().unwrap_or_default();
        let line = self
            .store
            .settlement_line(gateway, &no, LineStatus::Success)
            .await?
            .ok_or_else(|| FinanceError::NotFound(format!("no settlement line {no}")))?;
        let amount = Money::new(line.amount).map_err(|err| FinanceError::Invalid(err.to_string()))?;
        let payment_id = match &item.payment_id {
            Some(p) => p.clone(),
            None => self.payment_for_line(e, &line, amount, case_code, actor).await?,
        };
        let evidence = json!({"file_id": line.file_id, "line_no": line.line_no, "gateway_txn_no": line.gateway_txn_no,
            "txn_ref": line.txn_ref, "amount": line.amount, "fee": line.fee, "txn_time": Timestamp::at(line.txn_time),
            "exception": e.exception_id, "approved_by": actor});
        let job = Job::Settlement(SettlementProof {
            gateway,
            txn_ref: line.txn_ref.clone(),
            gateway_txn_no: line.gateway_txn_no.clone(),
            amount,
            paid_at: line.txn_time,
            evidence,
            received_at: self.clock.now(),
        });
        let applied = self.committer.submit(job).await.map_err(|err| FinanceError::Internal(err.into()))?;
        use crate::domain::callback::CallbackResult;
        match applied.result {
            CallbackResult::Applied | CallbackResult::AlreadyConfirmed => Ok(payment_id),
            CallbackResult::InvalidAmount => {
                Err(FinanceError::Invalid("the line's amount differs from the payment's; resolve it otherwise".into()))
            }
            other => Err(FinanceError::Conflict(format!("the payment could not be confirmed ({other})"))),
        }
    }

    /// A pending payment of `case_code` for a line no payment has, created to be confirmed.
    async fn payment_for_line(
        &self,
        e: &ExceptionRow,
        line: &crate::store::LineRow,
        amount: Money,
        case_code: Option<&str>,
        actor: &str,
    ) -> Result<String> {
        let code = CaseCode::parse(case_code.unwrap_or_default())
            .map_err(|err| FinanceError::Invalid(format!("case_code: {err}")))?;
        let stored =
            self.store.get_case(&code).await?.ok_or_else(|| FinanceError::NotFound(format!("no case {code}")))?;
        let quote =
            self.fees.quote(&Facts::of_case(&stored.case)).map_err(|err| FinanceError::Invalid(err.to_string()))?;
        let quote_json = quote.to_json();
        let items = crate::fees::stored::quoted_items(&quote_json).map_err(|err| FinanceError::Internal(err.into()))?;
        let (phi_due, le_phi_due) = crate::fees::stored::citizen_split(&items);
        let payment = Payment {
            payment_id: new_id("pay"),
            case_code: code.clone(),
            case_version: stored.version,
            gateway: e.gateway,
            txn_ref: Some(line.txn_ref.clone()),
            amount,
            budget_amount: quote.budget_due,
            status: crate::domain::payment::PaymentStatus::Pending,
            gateway_txn_no: None,
            paid_at: None,
            pay_url: None,
            return_url: "settlement".into(),
            client_ip: "0.0.0.0".into(),
            created_by: actor.to_owned(),
            idempotency_key: format!("settlement:{}", e.exception_id),
            quote: quote_json,
            created_at: Timestamp::at(line.txn_time).0,
            expires_at: Timestamp::at(line.txn_time).0,
            flags: vec![],
        };
        let mut tx = self.store.write().await?;
        if tx.lock_cases(&[code.as_str()]).await?.is_empty() {
            return Err(FinanceError::NotFound(format!("no case {code}")));
        }
        if let Some(existing) = tx.payment_by_key(actor, &code, &payment.idempotency_key).await? {
            return Ok(existing.payment_id);
        }
        if !tx.settled_payments(&[code.as_str()]).await?.is_empty() {
            return Err(FinanceError::Conflict(format!("case {code} already holds a settled payment")));
        }
        let id = payment.payment_id.clone();
        tx.insert_payment(&NewPayment { payment, phi_due, le_phi_due }).await?;
        tx.commit().await?;
        Ok(id)
    }
}
