//! The bulk read of everything a run of one gateway needs (SPEC §7.2).
//!
//! A day holds up to millions of payments and lines: each comes packed into one text value (see
//! `pack_sql`) and the backend hands them over a page of thousands at a time, so a run costs a few
//! hundred values, not millions of rows. `Store::recon_read` hands each page's rows to a
//! `ReconSink` as it is read and frees the page: a run that copies what it keeps never holds the
//! day's packed rows (about 270 MB on a million-row day) beside its copy. `recon_data` keeps
//! every page instead (`ReconData`), for callers that look at a small day's rows.

use chrono::{DateTime, NaiveDate, Utc};

use super::settlement::SettlementFile;
use super::{Result, Store, StoreError, on_pool};
use crate::domain::payment::{Gateway, PaymentStatus};

/// A settlement line as reconciliation reads it; its text borrows from the `ReconData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconLine<'a> {
    /// Its file's `import_seq`.
    pub file_seq: i64,
    pub line_no: i64,
    pub gateway_txn_no: &'a str,
    pub txn_ref: &'a str,
    pub amount: i64,
    pub fee: i64,
    pub business_date: NaiveDate,
    pub refund: bool,
    /// The first occurrence of its (`gateway_txn_no`, status), decided at import.
    pub first: bool,
    /// The date whose close counted it.
    pub home_date: Option<NaiveDate>,
}

/// A payment with what reconciliation needs: the citizen's split of its quote, and its case's
/// current version to recompute `citizen_due`. Its text borrows from the `ReconData`.
#[derive(Debug, Clone)]
pub struct ReconPaymentRow<'a> {
    pub payment_id: &'a str,
    pub case_code: &'a str,
    pub txn_ref: &'a str,
    pub gateway_txn_no: Option<&'a str>,
    pub amount: i64,
    pub status: PaymentStatus,
    /// Its natural date: the business date of `paid_at`, for paid payments.
    pub paid_date: Option<NaiveDate>,
    /// The date whose close counted it.
    pub home_date: Option<NaiveDate>,
    pub duplicate: bool,
    /// The citizen's part of the payment's quote: phí and lệ phí.
    pub phi_due: i64,
    pub le_phi_due: i64,
    pub case_version: i64,
    pub procedure_code: &'a str,
    pub channel: &'a str,
    /// The case's subjects as stored (a JSON array of tags).
    pub subjects: &'a str,
    /// The case's facts, a JSON array like `subjects`.
    pub facts: &'a str,
    pub receiving_unit: &'a str,
    pub quantity: i64,
    pub received_at: DateTime<Utc>,
}

/// Everything a run of one gateway reads. Payments and lines stay as the store packed them;
/// `payments()` and `lines()` read them, borrowing their text.
#[derive(Debug, Clone, Default)]
pub struct ReconData {
    packed_payments: Vec<String>,
    packed_lines: Vec<String>,
    /// In import order.
    pub files: Vec<SettlementFile>,
    /// The gateway's closed dates.
    pub closed: Vec<NaiveDate>,
}

impl ReconData {
    /// The payments, in no particular order; an error names a corrupt field.
    pub fn payments(&self) -> impl Iterator<Item = Result<ReconPaymentRow<'_>>> {
        Records::new(&self.packed_payments, read_payment)
    }

    /// The settlement lines, in no particular order; an error names a corrupt field.
    pub fn lines(&self) -> impl Iterator<Item = Result<ReconLine<'_>>> {
        Records::new(&self.packed_lines, read_line)
    }
}

/// The default rows per page of `Store::recon_read`: about 1.6 MB of packed payments.
pub const PAGE_ROWS: usize = 8192;

/// What receives the rows of `Store::recon_read`, a page at a time. The rows borrow the page's
/// text, which is freed once the call returns: keep a copy of what outlives it.
pub trait ReconSink: Send {
    /// A page of payments (of the base, or of the references of `refs_without_payment`).
    fn payments(&mut self, rows: &[ReconPaymentRow<'_>]);
    /// A page of settlement lines.
    fn lines(&mut self, rows: &[ReconLine<'_>]);
    /// The references of the lines received so far that no payment received has, each once: the
    /// SQLite backend reads their payments in a second step (see `sqlite_packed`).
    fn refs_without_payment(&self) -> Vec<String>;
}

/// The gateway's files in import order and its closed dates, as `recon_read` returns them.
#[derive(Debug, Clone, Default)]
pub struct ReconFrame {
    pub files: Vec<SettlementFile>,
    pub closed: Vec<NaiveDate>,
}

/// Which rows a page holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Payments,
    Lines,
}

/// Where the backends' bulk reads hand each page of packed rows.
trait Pages: Send {
    fn page(&mut self, kind: Kind, page: String) -> Result<()>;
    fn refs_without_payment(&self) -> Result<Vec<String>>;
}

/// Keeps every page.
impl Pages for ReconData {
    fn page(&mut self, kind: Kind, page: String) -> Result<()> {
        match kind {
            Kind::Payments => self.packed_payments.push(page),
            Kind::Lines => self.packed_lines.push(page),
        }
        Ok(())
    }

    fn refs_without_payment(&self) -> Result<Vec<String>> {
        Ok(refs_without_payment(&self.packed_payments, &self.packed_lines)?.into_iter().map(str::to_owned).collect())
    }
}

/// Reads each page's rows into a `ReconSink`, then frees the page.
struct Rows<'s>(&'s mut dyn ReconSink);

impl Pages for Rows<'_> {
    fn page(&mut self, kind: Kind, page: String) -> Result<()> {
        let mut f = Unpack::new(&page);
        match kind {
            Kind::Payments => {
                let mut rows = Vec::new();
                while !f.is_empty() {
                    rows.push(read_payment(&mut f)?);
                }
                self.0.payments(&rows);
            }
            Kind::Lines => {
                let mut rows = Vec::new();
                while !f.is_empty() {
                    rows.push(read_line(&mut f)?);
                }
                self.0.lines(&rows);
            }
        }
        Ok(())
    }

    fn refs_without_payment(&self) -> Result<Vec<String>> {
        Ok(self.0.refs_without_payment())
    }
}

/// A backend's page handler: each page goes to the shared `Pages` (the payments' and the lines'
/// reads run at once, in one task, so the lock is never contended).
pub(super) type OnPage<'a> = dyn FnMut(String) -> Result<()> + Send + 'a;

fn on_page<'a>(
    pages: &'a std::sync::Mutex<&mut dyn Pages>,
    kind: Kind,
) -> impl FnMut(String) -> Result<()> + Send + 'a {
    move |page| pages.lock().unwrap_or_else(std::sync::PoisonError::into_inner).page(kind, page)
}

/// The records of packed values, one after another; stops after the first error.
struct Records<'a, T> {
    values: std::slice::Iter<'a, String>,
    current: Unpack<'a>,
    read: fn(&mut Unpack<'a>) -> Result<T>,
    failed: bool,
}

impl<'a, T> Records<'a, T> {
    fn new(values: &'a [String], read: fn(&mut Unpack<'a>) -> Result<T>) -> Self {
        Self { values: values.iter(), current: Unpack::new(""), read, failed: false }
    }
}

impl<T> Iterator for Records<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while self.current.is_empty() {
            self.current = Unpack::new(self.values.next()?);
        }
        let record = (self.read)(&mut self.current);
        self.failed = record.is_err();
        Some(record)
    }
}

impl Store {
    /// What a run of (`date`, `gateway`) reads: the paid payments and the lines without a home
    /// date or homed on `date`, and their counterparts by reference (a line's payment, a
    /// payment's lines), whatever their date; then the gateway's files and closed dates. What
    /// closed dates counted is not read again: the rows read do not grow with the history, and on
    /// SQLite neither does the work of finding them (`sqlite_packed`). The rows go to `sink` a
    /// page of at most `page_rows` at a time, as they are read; each row once.
    pub async fn recon_read(
        &self,
        gateway: Gateway,
        date: NaiveDate,
        page_rows: usize,
        sink: &mut dyn ReconSink,
    ) -> Result<ReconFrame> {
        self.read_pages(gateway, date, page_rows, &mut Rows(sink)).await?;
        self.recon_frame(gateway).await
    }

    /// `recon_read` with every page kept: for a small day's rows, to look at them.
    pub async fn recon_data(&self, gateway: Gateway, date: NaiveDate) -> Result<ReconData> {
        let mut data = ReconData::default();
        self.read_pages(gateway, date, PAGE_ROWS, &mut data).await?;
        let ReconFrame { files, closed } = self.recon_frame(gateway).await?;
        Ok(ReconData { files, closed, ..data })
    }

    async fn read_pages(
        &self,
        gateway: Gateway,
        date: NaiveDate,
        page_rows: usize,
        pages: &mut dyn Pages,
    ) -> Result<()> {
        let page_rows = page_rows.max(1);
        let pages = std::sync::Mutex::new(pages);
        match self.pool() {
            super::Pool::Sqlite(p) => sqlite_packed(p, gateway, date, page_rows, &pages).await,
            super::Pool::Postgres(p) => {
                let payments = format!(
                    "SELECT {} FROM payments p {PAYMENT_JOINS} WHERE {PAYMENT_WHERE}",
                    payment_select(super::postgres::time_text)
                );
                let lines = format!("SELECT {} FROM settlement_lines l WHERE {LINE_WHERE}", line_select());
                let fetch = super::postgres::fetch_packed;
                let (mut on_payments, mut on_lines) = (on_page(&pages, Kind::Payments), on_page(&pages, Kind::Lines));
                tokio::try_join!(
                    fetch(p, &payments, gateway, date, page_rows, &mut on_payments),
                    fetch(p, &lines, gateway, date, page_rows, &mut on_lines)
                )?;
                Ok(())
            }
        }
    }

    async fn recon_frame(&self, gateway: Gateway) -> Result<ReconFrame> {
        let files = self.settlement_files(Some(gateway)).await?;
        let closed: Vec<(NaiveDate,)> =
            on_pool!(self, |p| sqlx::query_as("SELECT business_date FROM day_closures WHERE gateway = $1")
                .bind(gateway)
                .fetch_all(p)
                .await)?;
        Ok(ReconFrame { files, closed: closed.into_iter().map(|(d,)| d).collect() })
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("reconciliation row: {what}"))
}

/// SQL packing `columns` into one text value, each field as `<bytes>:<text>` (a netstring
/// without its comma; NULL reads as empty), so that no value can be mistaken for a separator
/// whatever it holds. Packed rows concatenate into one value with no separator at all, which is
/// how the SQLite backend hands over thousands of rows at once (see `fetch_packed`).
pub(super) fn pack_sql(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| {
            let v = format!("COALESCE(CAST({c} AS TEXT), '')");
            format!("CAST(octet_length({v}) AS TEXT) || ':' || {v}")
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// Reads the fields `pack_sql` packed, in order.
pub(super) struct Unpack<'a> {
    rest: &'a str,
}

impl<'a> Unpack<'a> {
    pub(super) fn new(packed: &'a str) -> Self {
        Self { rest: packed }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn text(&mut self, what: &str) -> Result<&'a str, StoreError> {
        let (len, rest) = self.rest.split_once(':').ok_or_else(|| corrupt(what))?;
        let len: usize = len.parse().map_err(|_| corrupt(what))?;
        let value = rest.get(..len).ok_or_else(|| corrupt(what))?;
        self.rest = &rest[len..];
        Ok(value)
    }

    /// Skips `n` fields.
    fn skip(&mut self, n: usize) -> Result<(), StoreError> {
        for _ in 0..n {
            self.text("a field")?;
        }
        Ok(())
    }

    fn num(&mut self, what: &str) -> Result<i64, StoreError> {
        self.text(what)?.parse().map_err(|_| corrupt(what))
    }

    fn time(&mut self, what: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.text(what)? {
            "" => Ok(None),
            t => DateTime::parse_from_rfc3339(t).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| corrupt(what)),
        }
    }

    fn date(&mut self, what: &str) -> Result<NaiveDate, StoreError> {
        NaiveDate::parse_from_str(self.text(what)?, "%Y-%m-%d").map_err(|_| corrupt(what))
    }

    fn opt_date(&mut self, what: &str) -> Result<Option<NaiveDate>, StoreError> {
        match self.text(what)? {
            "" => Ok(None),
            d => NaiveDate::parse_from_str(d, "%Y-%m-%d").map(Some).map_err(|_| corrupt(what)),
        }
    }
}

/// The payments a run of (`$1` gateway, `$2` date) reads, as a condition over `p`: paid without a
/// home date or homed on the date, or the counterpart of such a line.
const PAYMENT_WHERE: &str = "p.gateway = $1 AND p.txn_ref IS NOT NULL
    AND ((p.status = 'paid' AND (p.home_date IS NULL OR p.home_date = $2))
         OR p.txn_ref IN (SELECT l.txn_ref FROM settlement_lines l WHERE l.gateway = $1 AND (l.home_date IS NULL OR l.home_date = $2)))";

/// The lines a run reads, as a condition over `l`: without a home date or homed on the date, or a
/// counterpart of such a paid payment.
const LINE_WHERE: &str = "l.gateway = $1 AND (l.home_date IS NULL OR l.home_date = $2
    OR l.txn_ref IN (SELECT p.txn_ref FROM payments p WHERE p.gateway = $1 AND p.status = 'paid' AND (p.home_date IS NULL OR p.home_date = $2)))";

/// What a payment row joins: its case's current version.
const PAYMENT_JOINS: &str = "JOIN cases c ON c.case_code = p.case_code
    JOIN case_versions v ON v.case_code = c.case_code AND v.version = c.current_version";

/// The base payments of a run (paid, without a home or homed on the date), as index-only
/// statements for SQLite to collect their row ids (see `sqlite::fetch_selected`). Without
/// `txn_ref IS NOT NULL`, a column the index does not hold: a lookup of the row per payment
/// (2.6–3.0 s on a million-row day); the packing leaves a payment without one out instead
/// (`sqlite_payment_select`).
const PAYMENT_BASE: [&str; 2] = [
    "SELECT rowid FROM payments WHERE gateway = $1 AND status = 'paid' AND home_date IS NULL",
    "SELECT rowid FROM payments WHERE gateway = $1 AND status = 'paid' AND home_date = $2",
];

/// The payments of the references in `$3`, a JSON array of the base lines' references that no
/// base payment has: a probe of the unique `txn_ref` index per reference. (`$2 = $2` keeps the
/// parameters numbered as bound.)
const PAYMENTS_BY_REFS: &str = "SELECT p.rowid FROM json_each($3) j CROSS JOIN payments p
     WHERE p.txn_ref = j.value AND p.gateway = $1 AND $2 = $2";

/// The lines of a run: the base lines (without a home or homed on the date), then the lines
/// homed on another date whose payment is a base payment. Those are all in `lines_homed_alone`
/// (migration 0015: a closed line whose payment its close did not home), so the join is driven
/// from that set, a probe of the payment and of the line per row of it, not from every homed line.
const LINES: [&str; 3] = [
    "SELECT rowid FROM settlement_lines WHERE gateway = $1 AND home_date IS NULL",
    "SELECT rowid FROM settlement_lines WHERE gateway = $1 AND home_date = $2",
    "SELECT l.rowid FROM lines_homed_alone k CROSS JOIN payments p CROSS JOIN settlement_lines l
     WHERE k.gateway = $1 AND p.txn_ref = k.txn_ref AND p.gateway = $1 AND p.status = 'paid'
       AND (p.home_date IS NULL OR p.home_date = $2) AND l.file_seq = k.file_seq AND l.line_no = k.line_no",
];

/// What a run reads on SQLite, the same rows as `PAYMENT_WHERE` and `LINE_WHERE`, in two steps
/// whose work is about the day's size whatever the history holds. First, at once, the base
/// payments and the lines (`PAYMENT_BASE`, `LINES`). Then the payments of the lines read whose
/// reference no base payment has (`PAYMENTS_BY_REFS`): the unpaid payments of lines, the payments
/// homed on another date (a late line, a refund, a second charge), about the size of the
/// exceptions. Each step reads in one snapshot; the two steps, like the two fetches of the first,
/// may see different ones, which a close rules out by holding the gateway's events.
async fn sqlite_packed(
    p: &sqlx::SqlitePool,
    gateway: Gateway,
    date: NaiveDate,
    page_rows: usize,
    pages: &std::sync::Mutex<&mut dyn Pages>,
) -> Result<()> {
    let payments = sqlite_payment_select();
    let payments_from = format!("temp.recon_rows r JOIN payments p ON p.rowid = r.rid {PAYMENT_JOINS}");
    let lines = line_select();
    let lines_from = "temp.recon_rows r JOIN settlement_lines l ON l.rowid = r.rid";
    let fetch = super::sqlite::fetch_selected;
    let base = |fill, select, from| super::sqlite::Selected { fill, select, from, gateway, date, extra: "", page_rows };
    let (mut on_payments, mut on_lines) = (on_page(pages, Kind::Payments), on_page(pages, Kind::Lines));
    tokio::try_join!(
        fetch(p, base(&PAYMENT_BASE, &payments, &payments_from), &mut on_payments),
        fetch(p, base(&LINES, &lines, lines_from), &mut on_lines)
    )?;
    let refs = pages.lock().unwrap_or_else(std::sync::PoisonError::into_inner).refs_without_payment()?;
    if !refs.is_empty() {
        let refs = serde_json::to_string(&refs).map_err(|e| StoreError::Corrupt(format!("line references: {e}")))?;
        let by_refs = super::sqlite::Selected { extra: &refs, ..base(&[PAYMENTS_BY_REFS], &payments, &payments_from) };
        fetch(p, by_refs, &mut on_payments).await?;
    }
    Ok(())
}

/// The references of `lines` that none of `payments` has, each once (packed rows).
fn refs_without_payment<'a>(payments: &[String], lines: &'a [String]) -> Result<Vec<&'a str>> {
    let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    for r in Records::new(payments, payment_ref) {
        seen.insert(r?);
    }
    let mut out = Vec::new();
    for r in Records::new(lines, line_ref) {
        let r = r?;
        if seen.insert(r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The packed payment row of SQLite: `payment_select`, or nothing for a payment without a
/// reference (which no run reads).
fn sqlite_payment_select() -> String {
    format!("CASE WHEN p.txn_ref IS NULL THEN '' ELSE {} END AS x", payment_pack(super::sqlite::time_text))
}

/// The packed columns of a payment row (`... AS x`, over `p` and `v` of `PAYMENT_JOINS`);
/// `time` renders a timestamp column as RFC 3339 text.
pub(super) fn payment_select(time: fn(&str) -> String) -> String {
    format!("{} AS x", payment_pack(time))
}

/// How many fields `payment_pack` packs, and `line_select`.
const PAYMENT_FIELDS: usize = 19;
const LINE_FIELDS: usize = 10;

/// The packed columns of a payment row, without a name.
fn payment_pack(time: fn(&str) -> String) -> String {
    let columns = [
        "p.payment_id".to_owned(),
        "p.case_code".into(),
        "p.txn_ref".into(),
        "p.gateway_txn_no".into(),
        "p.amount".into(),
        "p.status".into(),
        "CASE WHEN EXISTS (SELECT 1 FROM payment_flags f WHERE f.payment_id = p.payment_id AND f.flag = 'duplicate_payment') THEN 1 ELSE 0 END".into(),
        "p.phi_due".into(),
        "p.le_phi_due".into(),
        "p.paid_date".into(),
        "p.home_date".into(),
        "v.version".into(),
        "v.procedure_code".into(),
        "v.channel".into(),
        "v.quantity".into(),
        "v.subjects".into(),
        time("v.received_at"),
        "v.facts".into(),
        "v.receiving_unit".into(),
    ];
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    pack_sql(&columns)
}

fn read_payment<'a>(f: &mut Unpack<'a>) -> Result<ReconPaymentRow<'a>, StoreError> {
    Ok(ReconPaymentRow {
        payment_id: f.text("payment_id")?,
        case_code: f.text("case_code")?,
        txn_ref: f.text("txn_ref")?,
        gateway_txn_no: Some(f.text("gateway_txn_no")?).filter(|n| !n.is_empty()),
        amount: f.num("amount")?,
        status: f.text("status")?.parse().map_err(|_| corrupt("status"))?,
        duplicate: f.text("duplicate")? == "1",
        phi_due: f.num("phi_due")?,
        le_phi_due: f.num("le_phi_due")?,
        paid_date: f.opt_date("paid_date")?,
        home_date: f.opt_date("home_date")?,
        case_version: f.num("version")?,
        procedure_code: f.text("procedure_code")?,
        channel: f.text("channel")?,
        quantity: f.num("quantity")?,
        subjects: f.text("subjects")?,
        received_at: f.time("received_at")?.ok_or_else(|| corrupt("received_at"))?,
        facts: f.text("facts")?,
        receiving_unit: f.text("receiving_unit")?,
    })
}

/// A packed payment row's reference, the rest of the row skipped.
fn payment_ref<'a>(f: &mut Unpack<'a>) -> Result<&'a str, StoreError> {
    f.skip(2)?;
    let r = f.text("txn_ref")?;
    f.skip(PAYMENT_FIELDS - 3)?;
    Ok(r)
}

/// A packed line's reference, the rest of the line skipped.
fn line_ref<'a>(f: &mut Unpack<'a>) -> Result<&'a str, StoreError> {
    f.skip(3)?;
    let r = f.text("txn_ref")?;
    f.skip(LINE_FIELDS - 4)?;
    Ok(r)
}

/// The packed columns of a settlement line (`... AS x`, over `l`).
pub(super) fn line_select() -> String {
    let columns = [
        "l.file_seq",
        "l.line_no",
        "l.gateway_txn_no",
        "l.txn_ref",
        "l.amount",
        "l.fee",
        "l.business_date",
        "l.status",
        "l.first_occurrence",
        "l.home_date",
    ];
    format!("{} AS x", pack_sql(&columns))
}

fn read_line<'a>(f: &mut Unpack<'a>) -> Result<ReconLine<'a>, StoreError> {
    Ok(ReconLine {
        file_seq: f.num("import_seq")?,
        line_no: f.num("line_no")?,
        gateway_txn_no: f.text("gateway_txn_no")?,
        txn_ref: f.text("txn_ref")?,
        amount: f.num("amount")?,
        fee: f.num("fee")?,
        business_date: f.date("business_date")?,
        refund: f.text("status")? == "refund",
        first: matches!(f.text("first_occurrence")?, "1" | "true" | "t"),
        home_date: f.opt_date("home_date")?,
    })
}
