//! What the finance dashboard reads beyond a report: where each (date, gateway) stands for the
//! calendar, exceptions across dates, one exception with its evidence (the case, the payment,
//! the raw callbacks and the settlement line), payment look-ups, and the dead-lettered portal
//! notifications. Reads only: every change goes through the workflows of the other files.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Finance, FinanceError, Result, exception_view};
use crate::domain::CaseCode;
use crate::domain::payment::{DeliveryState, Gateway};
use crate::reconcile::report::ReportItem;
use crate::store::{
    ExceptionFilter, ExceptionListRow, ExceptionRow, LineRow, NoGatewayPayment, OutboxEvent, Payment, SettlementFile,
    StoredCase,
};

/// The longest range the calendar reads at once.
pub const MAX_CALENDAR_DAYS: i64 = 62;

/// Where a (business date, gateway) stands, in the order a day moves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayState {
    /// No settlement line of the date has been imported, and it was never run.
    NoFile,
    /// Lines of the date are in, but no reconciliation run yet.
    NotRun,
    /// The latest run has exceptions still open or pending approval.
    OpenExceptions {
        unresolved: i64,
    },
    /// The latest run's exceptions are all resolved: it can be closed.
    Reconciled,
    Closed,
}

impl DayState {
    pub fn as_str(self) -> &'static str {
        match self {
            DayState::NoFile => "no_file",
            DayState::NotRun => "not_run",
            DayState::OpenExceptions { .. } => "open_exceptions",
            DayState::Reconciled => "reconciled",
            DayState::Closed => "closed",
        }
    }
}

/// One (date, gateway) of the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarCell {
    pub date: NaiveDate,
    pub gateway: Gateway,
    pub state: DayState,
    /// Settlement lines whose own date is this date.
    pub lines: i64,
}

/// An exception with everything a reviewer compares.
#[derive(Debug, Clone)]
pub struct ExceptionDetail {
    pub exception: ExceptionRow,
    /// When its (date, gateway) was closed: nothing about it changes any more.
    pub closed_at: Option<DateTime<Utc>>,
    /// Its item in the latest run of its (date, gateway), with the exception's state and
    /// resolution; `None` when that run no longer has it.
    pub item: Option<ReportItem>,
    pub case: Option<StoredCase>,
    pub payment: Option<Payment>,
    /// Every raw callback and status answer of the payment, oldest first.
    pub callbacks: Vec<crate::payments::CallbackView>,
    /// The settlement line the item is (for a line item), and the file it came in.
    pub line: Option<(LineRow, Option<SettlementFile>)>,
    /// The resolutions that apply to its item now (none without an item).
    pub actions: Vec<super::Action>,
}

/// A payment with its case, evidence and portal events.
#[derive(Debug, Clone)]
pub struct PaymentDetail {
    pub payment: Payment,
    pub case: Option<StoredCase>,
    pub callbacks: Vec<crate::payments::CallbackView>,
    pub events: Vec<OutboxEvent>,
}

/// What a payment search found, and what the query was read as.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// `case_code`, `payment_id` or `txn_ref`.
    pub read_as: &'static str,
    pub payments: Vec<Payment>,
}

impl Finance {
    /// Every (date, gateway) of `from..=to` with its state, by date then gateway.
    pub async fn calendar(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<CalendarCell>> {
        let days = (to - from).num_days();
        if !(0..MAX_CALENDAR_DAYS).contains(&days) {
            return Err(FinanceError::Invalid(format!(
                "to: must be on or after from and at most {MAX_CALENDAR_DAYS} days later"
            )));
        }
        let facts = self.store.range_facts(from, to).await?;
        let mut out = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            for gateway in Gateway::ALL {
                let lines = facts.lines.iter().find(|l| l.0 == date && l.1 == *gateway).map_or(0, |l| l.2);
                let run = facts.runs.iter().find(|r| r.0 == date && r.1 == *gateway);
                let state = if facts.closed.contains(&(date, *gateway)) {
                    DayState::Closed
                } else {
                    match run {
                        Some((_, _, _, 0)) => DayState::Reconciled,
                        Some((_, _, _, n)) => DayState::OpenExceptions { unresolved: *n },
                        None if lines > 0 => DayState::NotRun,
                        None => DayState::NoFile,
                    }
                };
                out.push(CalendarCell { date, gateway: *gateway, state, lines });
            }
        }
        Ok(out)
    }

    /// Exceptions across dates matching `filter`, newest date first, after the cursor.
    pub async fn exception_list(
        &self,
        filter: &ExceptionFilter,
        after: Option<(NaiveDate, &str)>,
        limit: i64,
    ) -> Result<Vec<ExceptionListRow>> {
        Ok(self.store.exception_list(filter, after, limit).await?)
    }

    /// The waived and budget-covered payments created on a date, at most `limit`.
    pub async fn no_gateway_payments(&self, date: NaiveDate, limit: i64) -> Result<Vec<NoGatewayPayment>> {
        Ok(self.store.no_gateway_payments(date, limit).await?)
    }

    /// One exception with its item, case, payment, callbacks and settlement line.
    pub async fn exception_detail(&self, id: &str) -> Result<ExceptionDetail> {
        let e =
            self.store.get_exception(id).await?.ok_or_else(|| FinanceError::NotFound(format!("no exception {id}")))?;
        let closed_at = self.store.closure(e.business_date, e.gateway).await?;
        let item = match self.store.latest_run(e.business_date, e.gateway).await? {
            Some(run) => self.store.run_item(&run.run_id, id).await?,
            None => None,
        };
        let case = match item.as_ref().and_then(|i| i.case_code.as_deref()).map(CaseCode::parse) {
            Some(Ok(code)) => self.store.get_case(&code).await?,
            _ => None,
        };
        let payment = match item.as_ref().and_then(|i| i.payment_id.as_deref()) {
            Some(p) => self.store.get_payment(p).await?,
            None => None,
        };
        let callbacks = match &payment {
            Some(p) => views_of(self.store.payment_callbacks(&p.payment_id).await?),
            None => vec![],
        };
        let line = match &item {
            Some(i) => self.item_line(e.gateway, i).await?,
            None => None,
        };
        let actions = match &item {
            Some(i) if i.category != crate::domain::recon::Category::Matched => {
                self.applicable_actions(i, e.gateway).await?
            }
            _ => vec![],
        };
        let item = item.map(|i| ReportItem::of(i, e.state.as_str(), exception_view(&e)));
        Ok(ExceptionDetail { exception: e, closed_at, item, case, payment, callbacks, line, actions })
    }

    /// The settlement line a line item is: the first occurrence of its number and status, or,
    /// for a later occurrence, the file and line its key names (`...:<sha prefix>:<line>`).
    async fn item_line(
        &self,
        gateway: Gateway,
        i: &crate::store::ItemRow,
    ) -> Result<Option<(LineRow, Option<SettlementFile>)>> {
        let (Some(no), Some(status)) = (i.gateway_txn_no.as_deref(), i.line_status) else { return Ok(None) };
        let first = format!("{gateway}:{no}:{status}");
        let later = i.item_key.strip_prefix(&first).and_then(|rest| rest.strip_prefix(':')).and_then(|rest| {
            let (sha, line) = rest.split_once(':')?;
            let hex = !sha.is_empty() && sha.bytes().all(|b| b.is_ascii_hexdigit());
            hex.then_some((sha, line.parse::<i64>().ok()?))
        });
        let line = match later {
            Some((sha, line_no)) => self.store.settlement_line_in_file(gateway, sha, line_no).await?,
            None => self.store.settlement_line(gateway, no, status).await?,
        };
        let Some(line) = line else { return Ok(None) };
        let file = self.store.settlement_files(Some(gateway)).await?.into_iter().find(|f| f.file_id == line.file_id);
        Ok(Some((line, file)))
    }

    /// Payments by case code, payment id or `txn_ref` (what `q` is read as decides).
    pub async fn search_payments(&self, q: &str) -> Result<SearchResult> {
        let q = q.trim();
        if q.is_empty() || q.chars().count() > 100 || q.chars().any(char::is_control) {
            return Err(FinanceError::Invalid(
                "q: give a case code, a payment id or a txn_ref (1 to 100 printable characters)".into(),
            ));
        }
        if let Ok(code) = CaseCode::parse(q) {
            return Ok(SearchResult { read_as: "case_code", payments: self.store.case_payments(&code).await? });
        }
        if q.starts_with("pay_") {
            let found = self.store.get_payment(q).await?;
            return Ok(SearchResult { read_as: "payment_id", payments: found.into_iter().collect() });
        }
        let found = self.store.payment_by_txn_ref(q).await?;
        Ok(SearchResult { read_as: "txn_ref", payments: found.into_iter().collect() })
    }

    /// One payment with its case, callbacks and portal events.
    pub async fn payment_detail(&self, id: &str) -> Result<PaymentDetail> {
        let payment =
            self.store.get_payment(id).await?.ok_or_else(|| FinanceError::NotFound(format!("no payment {id}")))?;
        let case = self.store.get_case(&payment.case_code).await?;
        let callbacks = views_of(self.store.payment_callbacks(id).await?);
        let events =
            self.store.case_events(&payment.case_code).await?.into_iter().filter(|e| e.payment_id == id).collect();
        Ok(PaymentDetail { payment, case, callbacks, events })
    }

    /// Dead-lettered portal notifications by id after the cursor, at most `limit`.
    pub async fn dead_letters(&self, after: Option<&str>, limit: i64) -> Result<Vec<OutboxEvent>> {
        Ok(self.store.notifications(Some(DeliveryState::Failed), after, limit).await?)
    }
}

impl Finance {
    /// The settlement profiles an import may name: `canonical` and each `<name>.toml` of the
    /// profiles folder (on disk, or embedded in the binary), sorted.
    pub fn profile_names(&self) -> Vec<String> {
        Self::profile_names_in(&self.profiles)
    }

    /// The profile names of the folder `dir`, as `profile_names` lists them.
    pub fn profile_names_in(dir: &std::path::Path) -> Vec<String> {
        let files: Vec<String> = match crate::embedded::list_dir(dir) {
            Some(embedded) => embedded.into_iter().map(str::to_owned).collect(),
            None => std::fs::read_dir(dir)
                .map(|dir| {
                    dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect()
                })
                .unwrap_or_default(),
        };
        let mut names: Vec<String> = files.iter().filter_map(|n| n.strip_suffix(".toml")).map(str::to_owned).collect();
        names.sort();
        names.insert(0, "canonical".to_owned());
        names
    }
}

fn views_of(rows: Vec<crate::store::CallbackRow>) -> Vec<crate::payments::CallbackView> {
    rows.into_iter().map(crate::payments::CallbackView::of).collect()
}
