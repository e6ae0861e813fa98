//! Exceptions and their resolutions (SPEC §7.3): a finance user resolves; a resolution that moves
//! money waits for a different finance user's approval (four eyes), which makes its posting in
//! the transaction that resolves the exception; a rejection returns it to `open`. Every change is
//! audited in its transaction. What each (category, action) posts is `movement` (README
//! "Resolution postings", derived from the account meanings of SPEC §8).

use serde_json::{Value, json};

use super::{Finance, FinanceError, Planned, Result, apply_planned};
use crate::domain::ledger::{self, Line, Posting, QuotedItem};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::{Category, ExceptionState, ItemRecord, LineStatus};
use crate::domain::{CaseCode, Money, Timestamp, new_id};
use crate::fees::Facts;
use crate::payments::{Job, SettlementProof};
use crate::store::{AuditEvent, ExceptionChange, ExceptionRow, LineRow, NewPayment, Payment, WriteTx};

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

/// What a resolution needs to know beyond its item: the item's payment, if any.
#[derive(Debug, Clone, Default)]
pub(super) struct MoneyContext {
    /// The payment is flagged `duplicate_payment`: its refund was decided when it was confirmed.
    pub duplicate: bool,
    /// The citizen's part of the payment's quote per kind: (phí, lệ phí).
    pub paid_by_kind: Option<(i64, i64)>,
    /// The case's current `citizen_due` per kind: (phí, lệ phí).
    pub expected_by_kind: Option<(i64, i64)>,
    /// The payment's quote items with their budget tags: revenue taken back comes off the
    /// sub-items that earned it (`ledger::revenue_lines`). Empty: untagged lines per kind.
    pub paid_items: Vec<QuotedItem>,
    /// The case's current quote items with their budget tags.
    pub expected_items: Vec<QuotedItem>,
}

/// Splits `amount` over the kinds in proportion to `(phi, le_phi)`; the remainder of the
/// division goes to lệ phí.
fn by_kind(amount: i64, (phi, le_phi): (i64, i64)) -> (i64, i64) {
    let total = phi + le_phi;
    if total <= 0 {
        return (0, amount);
    }
    let p = i64::try_from(i128::from(amount) * i128::from(phi) / i128::from(total)).unwrap_or(0);
    (p, amount - p)
}

/// What a resolution of an exception posts: the lines of its posting, `None` when it moves no
/// money, or an error when the action does not apply to the exception. The accounts follow their
/// meanings (SPEC §8); README "Resolution postings" is this table.
pub(super) fn movement(
    action: Action,
    item: &ItemRecord,
    gateway: Gateway,
    ctx: &MoneyContext,
) -> Result<Option<Vec<Line>>> {
    let clearing = ledger::clearing(gateway);
    let settled = item.settled_amount.unwrap_or(0);
    let recorded = item.recorded_amount.unwrap_or(0);
    let bad = |why: &str| {
        FinanceError::Invalid(format!("action: {action} does not apply to this {} exception: {why}", item.category))
    };
    let memo = format!("{action} of {}", item.item_key);
    let pair = |dr: &str, cr: &str, amount: i64| {
        vec![Line::debit(dr, amount, memo.clone()), Line::credit(cr, amount, memo.clone())]
    };
    // Money a line settled without a paid payment sits in suspense.
    let in_suspense = item.line_status == Some(LineStatus::Success) && !item.settles_payment;
    // What the payment's amount has beyond (or short of) its quote's citizen part: posted to
    // suspense when it was confirmed (a settlement confirmation for another amount).
    let unallocated = ctx.paid_by_kind.map_or(0, |(phi, le_phi)| recorded - phi - le_phi);
    let lines = match (item.category, action) {
        (_, Action::ConfirmFromSettlement) => match item.category {
            // The payment's amount is what the citizen was asked; a line of another amount is
            // not its success (the callback would be refused the same way).
            Category::UnconfirmedInRecords if item.recorded_amount != item.settled_amount => {
                return Err(bad("the line's amount differs from the payment's; resolve it otherwise"));
            }
            Category::MissingInRecords | Category::UnconfirmedInRecords => return Ok(None),
            _ => return Err(bad("only a line no paid payment has can confirm one")),
        },
        (Category::DuplicateSettlementLine, Action::Accept) => return Ok(None),
        (Category::DuplicateSettlementLine, _) => return Err(bad("a repeated line moved no money; accept it")),
        // A refund the gateway paid out: decided at confirmation for a flagged duplicate;
        // otherwise decided now (revenue by the payment's kinds), or given up.
        (Category::Refund, Action::Accept) if ctx.duplicate => return Ok(None),
        (Category::Refund, Action::Accept) => {
            return Err(bad("the refund was not decided before: refund it (revenue back) or write it off"));
        }
        (Category::Refund, Action::Refund) if ctx.duplicate => {
            return Err(bad("a duplicate payment's refund was decided when it was confirmed; accept it"));
        }
        (Category::Refund, Action::Refund) => {
            let Some(split) = ctx.paid_by_kind else {
                return Err(bad("no payment has this reference: write it off"));
            };
            let (phi, le_phi) = by_kind(settled, split);
            let mut l = ledger::revenue_lines("phi", phi, &ctx.paid_items, true, &memo);
            l.extend(ledger::revenue_lines("le_phi", le_phi, &ctx.paid_items, true, &memo));
            l.push(Line::credit(ledger::REFUNDS_PAYABLE, settled, memo.clone()));
            l
        }
        (Category::Refund, Action::WriteOff) if ctx.duplicate => {
            return Err(bad("a duplicate payment's refund was decided when it was confirmed; accept it"));
        }
        (Category::Refund, Action::WriteOff) => pair(ledger::WRITE_OFFS, ledger::REFUNDS_PAYABLE, settled),
        (Category::MissingInRecords | Category::UnconfirmedInRecords, Action::Refund) => {
            pair(ledger::SUSPENSE, ledger::REFUNDS_PAYABLE, settled)
        }
        (Category::MissingInRecords | Category::UnconfirmedInRecords, Action::WriteOff) => {
            pair(ledger::SUSPENSE, ledger::WRITE_OFFS, settled)
        }
        (Category::MissingInRecords | Category::UnconfirmedInRecords, Action::Accept) => {
            return Err(bad("its money sits in suspense: refund it, write it off or confirm its payment"));
        }
        // A second charge: its money sits in suspense.
        (Category::DuplicatePayment, Action::Refund) if in_suspense => {
            pair(ledger::SUSPENSE, ledger::REFUNDS_PAYABLE, settled)
        }
        (Category::DuplicatePayment, Action::WriteOff) if in_suspense => {
            pair(ledger::SUSPENSE, ledger::WRITE_OFFS, settled)
        }
        (Category::DuplicatePayment, Action::Accept) if in_suspense => {
            return Err(bad("a second charge's money sits in suspense: refund it or write it off"));
        }
        // A flagged duplicate: its refund is payable since its confirmation.
        (Category::DuplicatePayment, Action::Refund) => return Ok(None),
        // Kept instead of refunded: the refund decided at confirmation (the payment's amount) is
        // cancelled and what the gateway settled is kept; a difference between the two leaves
        // clearing, as an amount mismatch's resolution would (duplicate_payment comes first).
        (Category::DuplicatePayment, Action::WriteOff) if item.settled_amount.is_some() => {
            let mut l = vec![Line::debit(ledger::REFUNDS_PAYABLE, recorded, memo.clone())];
            if settled > recorded {
                l.push(Line::debit(&clearing, settled - recorded, memo.clone()));
            }
            l.push(Line::credit(ledger::WRITE_OFFS, settled, memo.clone()));
            if recorded > settled {
                l.push(Line::credit(&clearing, recorded - settled, memo.clone()));
            }
            l
        }
        (Category::DuplicatePayment, Action::WriteOff) => pair(ledger::REFUNDS_PAYABLE, &clearing, recorded),
        (Category::DuplicatePayment, Action::Accept) if item.settled_amount.is_none() => return Ok(None),
        (Category::DuplicatePayment, Action::Accept) => {
            return Err(bad("the duplicate was settled: refund it (as decided) or write the refund off"));
        }
        (Category::AmountMismatch, Action::WriteOff) if recorded > settled => {
            pair(ledger::WRITE_OFFS, &clearing, recorded - settled)
        }
        (Category::AmountMismatch, Action::WriteOff) if settled > recorded => {
            pair(&clearing, ledger::WRITE_OFFS, settled - recorded)
        }
        (Category::AmountMismatch, Action::Refund) if settled > recorded => {
            pair(&clearing, ledger::REFUNDS_PAYABLE, settled - recorded)
        }
        (Category::AmountMismatch, _) => {
            return Err(bad("the gateway settled less: write the difference off; settled more: refund or keep it"));
        }
        // A settlement-confirmed payment's amount may differ from its quote's `citizen_due`: the
        // difference sits in suspense (SPEC §8) until a resolution moves it; accepting would
        // leave it there.
        (Category::FeeMismatch, Action::Accept) if unallocated != 0 => {
            let refundable = ctx.expected_by_kind.is_some_and(|(phi, le_phi)| recorded > phi + le_phi);
            return Err(bad(&format!(
                "the {} đồng between the payment and its quote sits in suspense: write_off settles it against what the case owes now{}",
                unallocated.abs(),
                if refundable { ", refund returns the excess" } else { "" }
            )));
        }
        (Category::FeeMismatch, Action::Accept) => return Ok(None),
        // Revenue becomes what the case owes now and the suspense is cleared; the excess over
        // it is to refund.
        (Category::FeeMismatch, Action::Refund) => {
            let (mut l, over) =
                to_current_quote(ctx, unallocated, &memo).ok_or_else(|| bad("the case cannot be quoted now"))?;
            if over <= 0 {
                return Err(bad("the citizen paid no more than the case owes now"));
            }
            l.push(Line::credit(ledger::REFUNDS_PAYABLE, over, memo.clone()));
            l
        }
        // The same for a settlement-confirmed payment's difference, the rest given up (a
        // shortfall, Dr write_offs) or kept (an excess, Cr write_offs).
        (Category::FeeMismatch, Action::WriteOff) if unallocated != 0 => {
            let (mut l, over) =
                to_current_quote(ctx, unallocated, &memo).ok_or_else(|| bad("the case cannot be quoted now"))?;
            if over < 0 {
                l.push(Line::debit(ledger::WRITE_OFFS, -over, memo.clone()));
            } else if over > 0 {
                l.push(Line::credit(ledger::WRITE_OFFS, over, memo.clone()));
            }
            l
        }
        (Category::FeeMismatch, Action::WriteOff) => {
            return Err(bad("revenue stays what the payment's quote said: accept it, or refund an excess"));
        }
        (Category::MissingInSettlement, Action::Accept) => return Ok(None),
        (Category::MissingInSettlement, Action::WriteOff) => pair(ledger::WRITE_OFFS, &clearing, recorded),
        (Category::MissingInSettlement, Action::Refund) => {
            return Err(bad("the gateway has not settled it: nothing to refund"));
        }
        (Category::Matched, _) => return Err(bad("a matched item is not an exception")),
    };
    Ok(Some(lines))
}

/// The lines that bring a payment's revenue to what its case owes now, kind by kind (fee by fee,
/// with their budget tags, when the items are known), and clear `unallocated` (its amount beyond
/// its quote's citizen part, in suspense since its confirmation); with the amount paid beyond
/// what the case owes now (negative: short of it), which the caller's lines must balance.
/// `None` when the case cannot be quoted now.
fn to_current_quote(ctx: &MoneyContext, unallocated: i64, memo: &str) -> Option<(Vec<Line>, i64)> {
    let (paid, expected) = (ctx.paid_by_kind?, ctx.expected_by_kind?);
    let mut l = Vec::new();
    let by_fee = fee_differences(&ctx.paid_items, &ctx.expected_items);
    let per_kind =
        [(ledger::REVENUE_PHI, paid.0 - expected.0, None), (ledger::REVENUE_LE_PHI, paid.1 - expected.1, None)];
    let lines: Vec<(&str, i64, Option<crate::domain::remittance::BudgetTag>)> =
        if by_fee.is_empty() { per_kind.to_vec() } else { by_fee };
    for (account, d, tag) in lines {
        if d > 0 {
            l.push(Line::debit(account, d, memo.to_owned()).tagged(tag));
        } else if d < 0 {
            l.push(Line::credit(account, -d, memo.to_owned()).tagged(tag));
        }
    }
    if unallocated > 0 {
        l.push(Line::debit(ledger::SUSPENSE, unallocated, memo.to_owned()));
    } else if unallocated < 0 {
        l.push(Line::credit(ledger::SUSPENSE, -unallocated, memo.to_owned()));
    }
    let recorded = paid.0 + paid.1 + unallocated;
    Some((l, recorded - expected.0 - expected.1))
}

/// Per fee (in the order the payment's quote, then the current quote, lists them): its revenue
/// account, what the citizen paid for it less what the case owes for it now, and its budget tag.
/// Empty when neither quote's items are known.
fn fee_differences(
    paid: &[QuotedItem],
    expected: &[QuotedItem],
) -> Vec<(&'static str, i64, Option<crate::domain::remittance::BudgetTag>)> {
    let mut out: Vec<(&str, String, i64, Option<crate::domain::remittance::BudgetTag>)> = Vec::new();
    for (items, sign) in [(paid, 1), (expected, -1)] {
        for i in items {
            let account = ledger::revenue(&i.kind);
            match out.iter_mut().find(|(a, fee, _, _)| *a == account && *fee == i.fee) {
                Some(row) => row.2 += sign * i.citizen_due,
                None => out.push((account, i.fee.clone(), sign * i.citizen_due, i.tag.clone())),
            }
        }
    }
    out.into_iter().map(|(a, _, d, t)| (a, d, t)).collect()
}

fn json_of(s: &Option<String>) -> Option<Value> {
    s.as_deref().and_then(|r| serde_json::from_str(r).ok())
}

impl Finance {
    /// The exception and the item it is, from the latest run of its (date, gateway).
    async fn exception_item(&self, id: &str) -> Result<(ExceptionRow, ItemRecord)> {
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

    /// The actions that apply to `item` now (README "Resolution postings"), in `Action::ALL`
    /// order: what a resolve of it would not refuse, a case code given where one is needed.
    pub(super) async fn applicable_actions(&self, item: &ItemRecord, gateway: Gateway) -> Result<Vec<Action>> {
        let ctx = self.money_context(item).await?;
        Ok(Action::ALL.iter().copied().filter(|a| movement(*a, item, gateway, &ctx).is_ok()).collect())
    }

    /// What a resolution of `item` needs to know about its payment and case.
    async fn money_context(&self, item: &ItemRecord) -> Result<MoneyContext> {
        let Some(pid) = &item.payment_id else { return Ok(MoneyContext::default()) };
        let Some(p) = self.store.get_payment(pid).await? else { return Ok(MoneyContext::default()) };
        let catalogue = &self.fees.catalogue;
        let paid_items =
            crate::fees::stored::tagged_items(&p.quote, catalogue).map_err(|e| FinanceError::Internal(e.into()))?;
        let paid = crate::fees::stored::citizen_split(&paid_items);
        let stored = self.store.get_case(&p.case_code).await?;
        let now = stored.as_ref().and_then(|s| self.fees.quote(&Facts::of_case(&s.case)).ok());
        let expected = now.as_ref().map(|q| {
            (q.citizen_by_kind(crate::fees::FeeKind::Phi).dong(), q.citizen_by_kind(crate::fees::FeeKind::LePhi).dong())
        });
        let expected_items = match &now {
            Some(q) => crate::fees::stored::tagged_items(&q.to_json(), catalogue)
                .map_err(|e| FinanceError::Internal(e.into()))?,
            None => vec![],
        };
        Ok(MoneyContext {
            duplicate: p.flags.contains(&crate::domain::payment::Flag::DuplicatePayment),
            paid_by_kind: Some(paid),
            expected_by_kind: expected,
            paid_items,
            expected_items,
        })
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
        if action == Action::ConfirmFromSettlement && item.category == Category::MissingInRecords && case_code.is_none()
        {
            return Err(FinanceError::Invalid("case_code: required to confirm a line no payment has".into()));
        }
        if let (Action::ConfirmFromSettlement, Category::MissingInRecords, Some(c)) = (action, item.category, case_code)
        {
            self.confirmable_case(c).await?;
        }
        movement(action, &item, e.gateway, &self.money_context(&item).await?)?;
        let now = self.clock.now();
        let request = json!({"action": action, "note": note, "case_code": case_code, "requested_by": actor, "requested_at": Timestamp::at(now)});
        let state = if action.moves_money() { ExceptionState::PendingApproval } else { ExceptionState::Resolved };
        let change = ExceptionChange { resolution: Some(request.clone()), ..ExceptionChange::of(&e, state) };
        let planned = Planned { change, posting: None, records_posting: false };
        self.change(planned, AuditEvent::new(actor, "exception.resolve", id, request)).await
    }

    /// Refuses, when it is requested, a confirmation for a case that is not recorded, cannot be
    /// quoted or is already settled; the approval checks again under the case's lock.
    async fn confirmable_case(&self, case_code: &str) -> Result<()> {
        let code = CaseCode::parse(case_code).map_err(|e| FinanceError::Invalid(format!("case_code: {e}")))?;
        let stored = self
            .store
            .get_case(&code)
            .await?
            .ok_or_else(|| FinanceError::Invalid(format!("case_code: no case {code} is recorded")))?;
        self.fees.quote(&Facts::of_case(&stored.case)).map_err(|e| FinanceError::Invalid(format!("case_code: {e}")))?;
        if let Some(p) = self.store.case_payments(&code).await?.iter().find(|p| p.status.is_settled()) {
            return Err(FinanceError::Conflict(format!(
                "case {code} is already {} by payment {}",
                p.status, p.payment_id
            )));
        }
        Ok(())
    }

    /// `POST /api/v1/exceptions/{id}/approve` (`approve = true`) or `/reject`. An approval makes
    /// its posting, and confirms the payment of a `confirm_from_settlement`, in the transaction
    /// that resolves the exception: a concurrent change to the exception leaves nothing moved.
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
        if !approve {
            let planned = Planned {
                change: ExceptionChange {
                    resolution: None,
                    rejection: Some(json!({"rejected": request, "by": actor, "at": Timestamp::at(now), "note": note})),
                    ..ExceptionChange::of(&e, ExceptionState::Open)
                },
                posting: None,
                records_posting: false,
            };
            return self.change(planned, audit).await;
        }
        let action = request["action"].as_str().and_then(|a| a.parse().ok()).unwrap_or(Action::Accept);
        let mut resolution = request.clone();
        resolution["approved_by"] = json!(actor);
        resolution["approved_at"] = json!(Timestamp::at(now));
        let posting = movement(action, &item, e.gateway, &self.money_context(&item).await?)?.map(|lines| Posting {
            idem_key: format!("resolution:{id}:{}", now.timestamp_micros()),
            kind: action.as_str().into(),
            business_date: e.business_date,
            refs: format!("exception={id};item_payment={}", item.payment_id.as_deref().unwrap_or("")),
            corrects: None,
            lines,
        });
        let mut tx = self.store.write().await?;
        if action == Action::ConfirmFromSettlement {
            let paid = self.confirm_from_line(&mut tx, &e, &item, request["case_code"].as_str(), actor).await?;
            resolution["payment_id"] = json!(paid);
        }
        let planned = Planned {
            change: ExceptionChange {
                resolution: Some(resolution),
                keep_posting: posting.is_none(),
                ..ExceptionChange::of(&e, ExceptionState::Resolved)
            },
            records_posting: posting.is_some(),
            posting,
        };
        if !apply_planned(&mut tx, vec![planned], &[audit], now).await? {
            return Err(FinanceError::Conflict(format!("{id} changed meanwhile; look again")));
        }
        tx.commit().await?;
        self.store.get_exception(id).await?.ok_or_else(|| FinanceError::NotFound(id.to_owned()))
    }

    /// Records, inside `tx`, the payment a settlement line proves: the existing unconfirmed one,
    /// or a new one for the given case, applied by the payment committer's rules like any payment
    /// outcome (its posting, its notification). Returns the payment id.
    async fn confirm_from_line(
        &self,
        tx: &mut WriteTx,
        e: &ExceptionRow,
        item: &ItemRecord,
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
            None => self.payment_for_line(tx, e, &line, amount, case_code, actor).await?,
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
        let applied = crate::payments::apply_in(tx, &[job], self.committer.receipts(), self.clock.now())
            .await
            .map_err(|err| FinanceError::Internal(err.into()))?;
        use crate::domain::callback::CallbackResult;
        match applied.first().map(|a| a.result) {
            Some(CallbackResult::Applied | CallbackResult::AlreadyConfirmed) => Ok(payment_id),
            Some(CallbackResult::InvalidAmount) => {
                Err(FinanceError::Invalid("the line's amount differs from the payment's; resolve it otherwise".into()))
            }
            other => Err(FinanceError::Conflict(format!("the payment could not be confirmed ({other:?})"))),
        }
    }

    /// A pending payment of `case_code` for a line no payment has, created inside `tx` to be
    /// confirmed.
    async fn payment_for_line(
        &self,
        tx: &mut WriteTx,
        e: &ExceptionRow,
        line: &LineRow,
        amount: Money,
        case_code: Option<&str>,
        actor: &str,
    ) -> Result<String> {
        let code = CaseCode::parse(case_code.unwrap_or_default())
            .map_err(|err| FinanceError::Invalid(format!("case_code: {err}")))?;
        let stored = self
            .store
            .get_case(&code)
            .await?
            .ok_or_else(|| FinanceError::Invalid(format!("case_code: no case {code} is recorded")))?;
        let quote = self
            .fees
            .quote(&Facts::of_case(&stored.case))
            .map_err(|err| FinanceError::Invalid(format!("case_code: {err}")))?;
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
            status: PaymentStatus::Pending,
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
        if tx.lock_cases(&[code.as_str()]).await?.is_empty() {
            return Err(FinanceError::Invalid(format!("case_code: no case {code} is recorded")));
        }
        if let Some(existing) = tx.payment_by_key(actor, &code, &payment.idempotency_key).await? {
            return Ok(existing.payment_id);
        }
        if !tx.settled_payments(&[code.as_str()]).await?.is_empty() {
            return Err(FinanceError::Conflict(format!("case {code} already holds a settled payment")));
        }
        let id = payment.payment_id.clone();
        tx.insert_payment(&NewPayment { payment, phi_due, le_phi_due }).await?;
        Ok(id)
    }
}

#[cfg(test)]
#[path = "exceptions_tests.rs"]
mod tests;
