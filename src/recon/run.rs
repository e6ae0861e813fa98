//! A reconciliation run of one (date, gateway) (SPEC §7.2): load what the gateway's payments and
//! settlement lines are, classify them with the pure matcher, carry the exceptions' resolutions
//! over, and store the run, its items and the exception changes in one transaction.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{Finance, FinanceError, Planned, Result, apply_planned, exception_view, vn_date};
use crate::domain::ledger::{Line, Posting};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::{Category, ExceptionState, LineStatus};
use crate::domain::{BusinessDate, Channel, ProcedureCode, Subject, Timestamp, new_id};
use crate::fees::Facts;
use crate::reconcile::render::CsvWriter;
use crate::reconcile::report::{
    FileRef, Inputs, Report, ReportHead, ReportItem, Summary, digests, exceptions, report_hash,
};
use crate::reconcile::{Closed, LineIn, Outcome, PaymentIn, Source, reconcile_compact};
use crate::store::recon_data::{PAGE_ROWS, ReconFrame, ReconLine, ReconPaymentRow, ReconSink};
use crate::store::{AuditEvent, ExceptionChange, ExceptionRow, ItemRow, RunRecord, SettlementFile};

/// A run and its report.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run: RunRecord,
    /// The report as served: with each exception's state and resolution.
    pub report: Report,
    /// False when the day is closed and this is the stored run.
    pub new: bool,
}

/// A business date across gateways (`GET /api/v1/days/{date}`): the payments no gateway took
/// part in, and each gateway's latest run and closure.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DayView {
    pub date: NaiveDate,
    pub waived: crate::store::NoGatewaySums,
    pub budget_covered: crate::store::NoGatewaySums,
    pub gateways: Vec<crate::store::DayGateway>,
}

/// Whether an exception was resolved by confirming its payment from its line: its item turning
/// `matched` is its own doing, and it stays resolved.
fn confirmed_by_itself(e: &ExceptionRow) -> bool {
    e.state == ExceptionState::Resolved
        && e.resolution
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .is_some_and(|v| v["action"] == "confirm_from_settlement")
}

/// How an item of a run stands: `matched`, or its exception's state and resolution.
fn state_of(i: &crate::store::ItemRow, states: &HashMap<String, ExceptionRow>) -> (&'static str, Value) {
    if i.category == Category::Matched {
        return ("matched", Value::Null);
    }
    match states.get(&i.item_key) {
        Some(e) => (e.state.as_str(), exception_view(e)),
        None => (ExceptionState::Open.as_str(), Value::Null),
    }
}

/// The CSV of every item of a run, page by page (`next` gives the header with the first page).
pub struct CsvPages {
    store: crate::store::Store,
    run_id: String,
    states: HashMap<String, ExceptionRow>,
    after: String,
    writer: CsvWriter,
    done: bool,
}

impl CsvPages {
    /// The next chunk of CSV, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.store.run_items(&self.run_id, None, false, Some(&self.after), 1000).await?;
        match page.last() {
            Some(last) => self.after = last.item_key.clone(),
            None => self.done = true,
        }
        for i in page {
            let (state, resolution) = state_of(&i, &self.states);
            self.writer.item(&ReportItem::of(i, state, resolution));
        }
        Ok(Some(self.writer.take()).filter(|c| !c.is_empty() || !self.done))
    }
}

/// Where a run is (`Finance::run_observed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Reading the date's payments and settlement lines (and their counterparts).
    Reading,
    /// Matching the rows read: payments and lines.
    Matching { rows: usize },
    /// Saving the report's items and the exceptions they open or carry.
    Saving { items: usize },
}

/// What a run reads, loaded: the gateway's payments and lines, its files in import order and
/// its closed days. Its text borrows from the arena the pages were copied into (`read_inputs`).
pub(super) struct Loaded<'a> {
    pub payments: Vec<PaymentIn<'a>>,
    pub lines: Vec<LineIn<'a>>,
    shas: Vec<String>,
    files: Vec<SettlementFile>,
    pub closed: Closed,
}

impl<'a> Loaded<'a> {
    /// The `import_seq` of the file at `file` in import order.
    pub fn import_seq(&self, file: usize) -> i64 {
        self.files.get(file).map_or(0, |f| f.import_seq)
    }

    /// What a computation of (`date`, `gateway`) from these inputs matched from: what builds its
    /// compact items back.
    pub fn source(&self, gateway: Gateway, date: NaiveDate) -> Source<'_, 'a> {
        Source { gateway: gateway.as_str(), date, payments: &self.payments, lines: &self.lines, file_shas: &self.shas }
    }
}

/// Everything a computation of a (date, gateway) produced. Its items borrow the text the
/// `Loaded` borrows; its matched items are compact, built back from the `Loaded` it was computed
/// from (`Loaded::source`), which must outlive it where they are read.
pub(super) struct Computed<'a> {
    pub outcome: Outcome<'a>,
    inputs: Inputs,
    summary: Summary,
    pub hash: String,
}

/// Cases of one procedure, channel, subjects, facts, unit, quantity and date have one quote.
type QuoteKey<'k> = (&'k str, &'k str, &'k str, &'k str, &'k str, i64, NaiveDate);

/// What turns the store's pages into the matcher's inputs, as the store reads them: the text the
/// inputs keep (ids, references, numbers: about a third of the packed rows) is copied into
/// `text`, so that each page can be freed once read, and the quotes met so far.
struct Reader<'f, 't> {
    finance: &'f Finance,
    text: &'t bumpalo_herd::Herd,
    quotes: HashMap<QuoteKey<'t>, Option<i64>>,
    payments: Vec<PaymentIn<'t>>,
    /// Each line's `file` holds its `import_seq` until `finish` makes it the file's position.
    lines: Vec<LineIn<'t>>,
}

impl<'t> Reader<'_, 't> {
    /// `r` as the matcher's input, its `expected` quoted once per distinct `QuoteKey`.
    fn payment(&mut self, r: &ReconPaymentRow<'_>, k: &bumpalo_herd::Member<'t>) -> PaymentIn<'t> {
        let date = vn_date(r.received_at);
        let key = (r.procedure_code, r.channel, r.subjects, r.facts, r.receiving_unit, r.quantity, date);
        // (A map of longer-lived keys looks up shorter-lived ones.)
        let seen: &HashMap<QuoteKey<'_>, Option<i64>> = &self.quotes;
        let expected = match seen.get(&key) {
            Some(e) => *e,
            None => {
                let e = self.finance.expected(r);
                let kept = (
                    &*k.alloc_str(r.procedure_code),
                    &*k.alloc_str(r.channel),
                    &*k.alloc_str(r.subjects),
                    &*k.alloc_str(r.facts),
                    &*k.alloc_str(r.receiving_unit),
                    r.quantity,
                    date,
                );
                self.quotes.insert(kept, e);
                e
            }
        };
        PaymentIn {
            business_date: if r.status == PaymentStatus::Paid { r.paid_date } else { None },
            home: r.home_date,
            payment_id: k.alloc_str(r.payment_id),
            case_code: k.alloc_str(r.case_code),
            case_version: r.case_version,
            txn_ref: k.alloc_str(r.txn_ref),
            gateway_txn_no: r.gateway_txn_no.map(|n| &*k.alloc_str(n)),
            amount: r.amount,
            status: r.status,
            duplicate: r.duplicate,
            expected,
            phi: r.phi_due,
            le_phi: r.le_phi_due,
        }
    }

    /// The inputs, with the files and closed dates the store read after the rows.
    fn finish(self, frame: ReconFrame) -> Loaded<'t> {
        let index: HashMap<i64, usize> = frame.files.iter().enumerate().map(|(i, f)| (f.import_seq, i)).collect();
        let mut lines = self.lines;
        for l in &mut lines {
            l.file = i64::try_from(l.file).ok().and_then(|seq| index.get(&seq)).copied().unwrap_or(usize::MAX);
        }
        Loaded {
            payments: self.payments,
            lines,
            shas: frame.files.iter().map(|f| f.sha256.clone()).collect(),
            files: frame.files,
            closed: frame.closed.into_iter().collect(),
        }
    }
}

impl ReconSink for Reader<'_, '_> {
    fn payments(&mut self, rows: &[ReconPaymentRow<'_>]) {
        let k = self.text.get();
        self.payments.reserve(rows.len());
        for r in rows {
            let p = self.payment(r, &k);
            self.payments.push(p);
        }
    }

    fn lines(&mut self, rows: &[ReconLine<'_>]) {
        let k = self.text.get();
        self.lines.extend(rows.iter().map(|l| line_in(l, &k)));
    }

    fn refs_without_payment(&self) -> Vec<String> {
        let mut seen: rustc_hash::FxHashSet<&str> = self.payments.iter().map(|p| p.txn_ref).collect();
        self.lines.iter().filter(|l| seen.insert(l.txn_ref)).map(|l| l.txn_ref.to_owned()).collect()
    }
}

/// `l` as the matcher's input, its `file` still its `import_seq` (`Reader::finish`).
fn line_in<'t>(l: &ReconLine<'_>, k: &bumpalo_herd::Member<'t>) -> LineIn<'t> {
    LineIn {
        file: usize::try_from(l.file_seq).unwrap_or(usize::MAX),
        line_no: usize::try_from(l.line_no).unwrap_or(0),
        gateway_txn_no: k.alloc_str(l.gateway_txn_no),
        txn_ref: k.alloc_str(l.txn_ref),
        amount: l.amount,
        fee: l.fee,
        status: if l.refund { LineStatus::Refund } else { LineStatus::Success },
        business_date: l.business_date,
        first: l.first,
        home: l.home_date,
    }
}

impl Finance {
    fn expected(&self, r: &ReconPaymentRow<'_>) -> Option<i64> {
        let procedure = ProcedureCode::parse(r.procedure_code).ok()?;
        let channel: Channel = r.channel.parse().ok()?;
        let subjects: Vec<Subject> = serde_json::from_str(r.subjects).ok()?;
        let case_facts: Vec<crate::domain::Fact> = serde_json::from_str(r.facts).ok()?;
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

    /// The matcher's inputs of (`date`, `gateway`) (the run's and the close's one way), read from
    /// the store a page at a time, the text they keep copied into `text` as each page is read and
    /// each page freed once read: the day's packed rows are never all held, nor beside their
    /// copy, and the matcher's items, which borrow `text`, outlive the inputs.
    #[tracing::instrument(name = "recon.load", skip(self, text))]
    pub(super) async fn read_inputs<'t>(
        &self,
        gateway: Gateway,
        date: NaiveDate,
        text: &'t bumpalo_herd::Herd,
    ) -> Result<Loaded<'t>> {
        let mut reader =
            Reader { finance: self, text, quotes: HashMap::new(), payments: Vec::new(), lines: Vec::new() };
        let frame = self.store.recon_read(gateway, date, PAGE_ROWS, &mut reader).await?;
        Ok(reader.finish(frame))
    }

    #[tracing::instrument(name = "recon.compute", skip(self, l))]
    pub(super) fn compute<'a>(&self, l: &Loaded<'a>, date: NaiveDate, gateway: Gateway) -> Computed<'a> {
        let outcome = reconcile_compact(l.source(gateway, date), &l.closed);
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

    /// The report's head of a computation, as a run stores it.
    fn stored_head(date: NaiveDate, gateway: Gateway, run_id: &str, c: &Computed<'_>) -> String {
        let head = ReportHead {
            business_date: date,
            gateway,
            run_id: run_id.to_owned(),
            report_hash: c.hash.clone(),
            inputs: c.inputs.clone(),
            summary: c.summary.clone(),
            totals: c.outcome.totals,
        };
        serde_json::to_string(&head).unwrap_or_default()
    }

    /// The served report of a stored run: its head, and its exceptions with their states.
    async fn report_of(&self, run: &RunRecord) -> Result<Report> {
        let head: ReportHead = serde_json::from_str(&run.report)
            .map_err(|e| FinanceError::Internal(anyhow::anyhow!("run {}: the stored report: {e}", run.run_id)))?;
        let states = self.states(run.gateway).await?;
        let mut items = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.store.run_items(&run.run_id, None, true, Some(&after), 5000).await?;
            let Some(last) = page.last() else { break };
            after = last.item_key.clone();
            for i in page {
                let (state, resolution) = state_of(&i, &states);
                items.push(ReportItem::of(i, state, resolution));
            }
        }
        Ok(Report { head, items })
    }

    /// The CSV of every item of the latest run of a (date, gateway).
    pub async fn csv(&self, date: NaiveDate, gateway: Gateway) -> Result<CsvPages> {
        let run = self.latest(date, gateway).await?;
        Ok(CsvPages {
            store: self.store.clone(),
            run_id: run.run_id,
            states: self.states(gateway).await?,
            after: String::new(),
            writer: CsvWriter::new(),
            done: false,
        })
    }

    async fn latest(&self, date: NaiveDate, gateway: Gateway) -> Result<RunRecord> {
        self.store
            .latest_run(date, gateway)
            .await?
            .ok_or_else(|| FinanceError::NotFound(format!("no reconciliation of {date} for {gateway} yet")))
    }

    /// Stores a run, its items and its exception changes; `false` when an exception changed or
    /// was created since `states` was read (nothing is stored: the caller runs again).
    #[tracing::instrument(name = "recon.save", skip_all, fields(items = c.outcome.len()))]
    async fn save(
        &self,
        run: &RunRecord,
        c: &Computed<'_>,
        loaded: &Loaded<'_>,
        planned: Vec<Planned>,
        states: &HashMap<String, ExceptionRow>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let mut tx = self.store.write().await?;
        // A matched item whose key is an exception's id stays a row: the exception list shows it.
        // An exception created meanwhile (by a run of the same date that saved first) is not in
        // `states`, so its item would go into a block: run again. Exceptions are never deleted,
        // so an equal count means none was created.
        if tx.exception_count(run.gateway).await? != states.len() as i64 {
            return Ok(false);
        }
        let items = c.outcome.all_items(loaded.source(run.gateway, run.business_date));
        tx.insert_run(run, items, &|key| states.contains_key(key)).await?;
        // Who ran it goes to the audit log with the run (SPEC §8), from the API, the dashboard or the CLI.
        let details = json!({"date": run.business_date.format("%Y-%m-%d").to_string(), "gateway": run.gateway,
                             "report_hash": run.report_hash, "items": c.outcome.len()});
        let audit = AuditEvent::new(&run.created_by, "reconciliation.run", run.run_id.clone(), details);
        let saved = apply_planned(&mut tx, planned, &[audit], at).await?;
        if saved {
            tx.commit().await?;
        }
        Ok(saved)
    }

    /// Runs a (date, gateway), or returns the stored run when it is closed.
    pub async fn run(&self, date: NaiveDate, gateway: Gateway, actor: &str) -> Result<RunView> {
        self.run_observed(date, gateway, actor, &|_| {}).await
    }

    /// `run`, telling `phase` where it is: reading the date's data, matching the rows read,
    /// saving the items (a big day spends seconds in each).
    #[tracing::instrument(name = "recon.run", skip(self, actor, phase))]
    pub async fn run_observed(
        &self,
        date: NaiveDate,
        gateway: Gateway,
        actor: &str,
        phase: &(dyn Fn(RunPhase) + Send + Sync),
    ) -> Result<RunView> {
        // A date still going can be run (a preview of the day so far); one not begun has nothing
        // to count, and its run would be a record of nothing.
        let today = BusinessDate::of(self.clock.now()).naive();
        if date > today {
            return Err(FinanceError::Invalid(format!(
                "date: {date} has not begun in Asia/Ho_Chi_Minh (today is {today}); a date can be reconciled from its own day on"
            )));
        }
        if self.store.closure(date, gateway).await?.is_some() {
            let run =
                self.store.latest_run(date, gateway).await?.ok_or_else(|| FinanceError::NotFound("no run".into()))?;
            return Ok(RunView { report: self.report_of(&run).await?, run, new: false });
        }
        for _ in 0..3 {
            phase(RunPhase::Reading);
            // The exceptions first: `save` refuses the run if one was created after this read.
            let states = self.states(gateway).await?;
            let text = bumpalo_herd::Herd::new();
            let loaded = self.read_inputs(gateway, date, &text).await?;
            let (payments, lines) = (loaded.payments.len(), loaded.lines.len());
            phase(RunPhase::Matching { rows: payments + lines });
            let c = self.compute(&loaded, date, gateway);
            // The inputs stay through the save: its matched items (about a million on a
            // million-row day) are built back from them a block at a time.
            phase(RunPhase::Saving { items: c.outcome.len() });
            let now = self.clock.now();
            let run_id = new_id("run");
            let run = RunRecord {
                run_id: run_id.clone(),
                business_date: date,
                gateway,
                created_at: Timestamp::at(now).0,
                created_by: actor.to_owned(),
                report_hash: c.hash.clone(),
                report: Self::stored_head(date, gateway, &run_id, &c),
            };
            let planned = self.carry_over(date, gateway, &c.outcome, &loaded.source(gateway, date), &states).await?;
            tracing::info!(payments, lines, items = c.outcome.len(), "reconciled");
            if self.save(&run, &c, &loaded, planned, &states, now).await? {
                return Ok(RunView { report: self.report_of(&run).await?, run, new: true });
            }
        }
        Err(FinanceError::Conflict("exceptions kept changing during the run; try again".into()))
    }

    /// What a run of an open date does to its exceptions (SPEC §7.3): a new exception opens; a
    /// resolution carries over while its item's key and category stay; a changed category reopens
    /// it, and a superseded exception whose item returns reopens; an exception whose item is gone,
    /// or is matched through an event other than its own resolution, is superseded. Reopening or
    /// superseding reverses the money its approved resolution moved (once: its `posting_id`
    /// becomes null).
    async fn carry_over<'a>(
        &self,
        date: NaiveDate,
        gateway: Gateway,
        o: &Outcome<'a>,
        src: &Source<'_, 'a>,
        states: &HashMap<String, ExceptionRow>,
    ) -> Result<Vec<Planned>> {
        let mut planned = Vec::new();
        for item in exceptions(o) {
            let category = item.category;
            let change = |from: Option<ExceptionState>, rejection: Option<Value>| ExceptionChange {
                exception_id: item.key.clone(),
                from_state: from,
                gateway,
                business_date: date,
                category,
                state: ExceptionState::Open,
                resolution: None,
                posting_id: None,
                keep_posting: false,
                rejection,
            };
            match states.get(&item.key) {
                None => planned.push(Planned { change: change(None, None), posting: None, records_posting: false }),
                Some(e)
                    if e.category == category && e.business_date == date && e.state != ExceptionState::Superseded => {}
                Some(e) => {
                    let why = if e.state == ExceptionState::Superseded {
                        "its item returned".to_owned()
                    } else if e.business_date != date {
                        format!("its item moved from {} to {date}", e.business_date)
                    } else {
                        format!("category changed from {} to {category}", e.category)
                    };
                    let rejection = json!({"reopened": why, "previous_resolution": e.resolution.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok())});
                    planned.push(Planned {
                        change: change(Some(e.state), Some(rejection)),
                        posting: self.reversal_of(e, date).await?,
                        records_posting: false,
                    });
                }
            }
        }
        for e in states.values().filter(|e| e.business_date == date && e.state != ExceptionState::Superseded) {
            // (Looked up in the sorted items: a map of a million keys was the save's peak.)
            let why = match o.category_of(&e.exception_id, src) {
                Some(Category::Matched) if confirmed_by_itself(e) => continue,
                Some(Category::Matched) => "its item is matched through another event",
                Some(_) => continue,
                None => "the run no longer has its item",
            };
            planned.push(Planned {
                change: ExceptionChange {
                    keep_posting: false,
                    rejection: Some(json!({"superseded": why})),
                    ..ExceptionChange::of(e, ExceptionState::Superseded)
                },
                posting: self.reversal_of(e, date).await?,
                records_posting: false,
            });
        }
        Ok(planned)
    }

    /// The reversal of an exception's un-reversed approved posting, dated `date`, if it has one.
    pub(super) async fn reversal_of(&self, e: &ExceptionRow, date: NaiveDate) -> Result<Option<Posting>> {
        match &e.posting_id {
            Some(pid) => Ok(Some(self.reversal(pid, date).await?)),
            None => Ok(None),
        }
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
                    // Revenue taken back from the sub-item that earned it.
                    tag: crate::domain::remittance::BudgetTag::from_refs(&e.refs),
                })
                .collect(),
        })
    }

    /// The latest run of a (date, gateway) with its served report.
    pub async fn report(&self, date: NaiveDate, gateway: Gateway) -> Result<RunView> {
        let run = self.latest(date, gateway).await?;
        Ok(RunView { report: self.report_of(&run).await?, run, new: false })
    }

    /// A business date across gateways.
    pub async fn day(&self, date: NaiveDate) -> Result<DayView> {
        let (waived, budget_covered) = self.store.no_gateway_sums(date).await?;
        Ok(DayView { date, waived, budget_covered, gateways: self.store.day_gateways(date).await? })
    }

    /// A page of a run's items.
    pub async fn items(
        &self,
        run_id: &str,
        category: Option<Category>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        Ok(self.store.run_items(run_id, category, false, after, limit).await?)
    }
}
