//! The bulk read of everything a run of one gateway needs (SPEC §7.2).
//!
//! A day holds up to millions of payments and lines: each comes packed into one text value (see
//! `pack_sql`) and the backend hands them over in bulk, so a run costs a few hundred values, not
//! millions of rows; `ReconData` reads them back, borrowing their text.

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

    /// `payments()` then `lines()`, handed to `payment` and `line`, each packed value freed as
    /// soon as it is read: a caller that copies the text it keeps never holds the day's packed
    /// rows beside its copy. Leaves the files and closed dates.
    pub fn drain(
        &mut self,
        mut payment: impl FnMut(ReconPaymentRow<'_>),
        mut line: impl FnMut(ReconLine<'_>),
    ) -> Result<()> {
        for value in std::mem::take(&mut self.packed_payments) {
            let mut f = Unpack::new(&value);
            while !f.is_empty() {
                payment(read_payment(&mut f)?);
            }
        }
        for value in std::mem::take(&mut self.packed_lines) {
            let mut f = Unpack::new(&value);
            while !f.is_empty() {
                line(read_line(&mut f)?);
            }
        }
        Ok(())
    }
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
    /// payment's lines), whatever their date; the gateway's files and closed dates. What closed
    /// dates counted is not read again: the rows read do not grow with the history.
    pub async fn recon_data(&self, gateway: Gateway, date: NaiveDate) -> Result<ReconData> {
        let (packed_payments, packed_lines) = match self.pool() {
            super::Pool::Sqlite(p) => {
                let (payment_rows, line_rows) = sqlite_row_statements(p, gateway, date).await?;
                let payment_rows: Vec<&str> = payment_rows.iter().map(String::as_str).collect();
                let line_rows: Vec<&str> = line_rows.iter().map(String::as_str).collect();
                let payments = payment_select(super::sqlite::time_text);
                let payments_from = format!("temp.recon_rows r JOIN payments p ON p.rowid = r.rid {PAYMENT_JOINS}");
                let lines = line_select();
                let lines_from = "temp.recon_rows r JOIN settlement_lines l ON l.rowid = r.rid";
                tokio::try_join!(
                    super::sqlite::fetch_selected(p, &payment_rows, &payments, &payments_from, gateway, date),
                    super::sqlite::fetch_selected(p, &line_rows, &lines, lines_from, gateway, date)
                )?
            }
            super::Pool::Postgres(p) => {
                let payments = format!(
                    "SELECT {} FROM payments p {PAYMENT_JOINS} WHERE {PAYMENT_WHERE}",
                    payment_select(super::postgres::time_text)
                );
                let lines = format!("SELECT {} FROM settlement_lines l WHERE {LINE_WHERE}", line_select());
                tokio::try_join!(
                    super::postgres::fetch_packed(p, &payments, gateway, date),
                    super::postgres::fetch_packed(p, &lines, gateway, date)
                )?
            }
        };
        let files = self.settlement_files(Some(gateway)).await?;
        let closed: Vec<(NaiveDate,)> =
            on_pool!(self, |p| sqlx::query_as("SELECT business_date FROM day_closures WHERE gateway = $1")
                .bind(gateway)
                .fetch_all(p)
                .await)?;
        Ok(ReconData { packed_payments, packed_lines, files, closed: closed.into_iter().map(|(d,)| d).collect() })
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

/// The same rows as `PAYMENT_WHERE`, as statements that each use an index, for SQLite to collect
/// their row ids (see `sqlite::fetch_selected`): the base rows (paid, without a home or homed on
/// the date), then the counterparts of the base lines that are not base rows themselves.
const PAYMENT_BASE: [&str; 2] = [
    "SELECT rowid FROM payments WHERE gateway = $1 AND status = 'paid' AND home_date IS NULL AND txn_ref IS NOT NULL",
    "SELECT rowid FROM payments WHERE gateway = $1 AND status = 'paid' AND home_date = $2 AND txn_ref IS NOT NULL",
];

/// The payment counterparts of the base lines, driven from the lines: a probe per base line.
const PAYMENT_BY_LINES: [&str; 2] = [
    "SELECT p.rowid FROM settlement_lines l JOIN payments p ON p.txn_ref = l.txn_ref
     WHERE l.gateway = $1 AND l.home_date IS NULL AND p.gateway = $1",
    "SELECT p.rowid FROM settlement_lines l JOIN payments p ON p.txn_ref = l.txn_ref
     WHERE l.gateway = $1 AND l.home_date = $2 AND p.gateway = $1",
];

/// The same rows as `LINE_WHERE`, as index-using statements: the base lines.
const LINE_BASE: [&str; 2] = [
    "SELECT rowid FROM settlement_lines WHERE gateway = $1 AND home_date IS NULL",
    "SELECT rowid FROM settlement_lines WHERE gateway = $1 AND home_date = $2",
];

/// The line counterparts of the base payments, driven from the payments: a probe per base payment.
const LINE_BY_PAYMENTS: [&str; 2] = [
    "SELECT l.rowid FROM payments p JOIN settlement_lines l ON l.gateway = p.gateway AND l.txn_ref = p.txn_ref
     WHERE p.gateway = $1 AND p.status = 'paid' AND p.home_date IS NULL",
    "SELECT l.rowid FROM payments p JOIN settlement_lines l ON l.gateway = p.gateway AND l.txn_ref = p.txn_ref
     WHERE p.gateway = $1 AND p.status = 'paid' AND p.home_date = $2",
];

/// The payment statuses other than paid, as an SQL list.
fn unpaid_statuses() -> String {
    super::sql_literals(PaymentStatus::ALL.iter().filter(|s| **s != PaymentStatus::Paid).map(|s| s.as_str()))
}

/// The statements that collect what a run reads on SQLite. A counterpart join probes one side
/// once per row of the other, so it is driven from the smaller side: the base rows of the date
/// (about the day's size), or the rows that a base row's counterpart can be without being a base
/// row itself (unpaid payments and paid ones homed on another date; lines homed on another date).
/// On a day whose gateway has no homed line, the lines' join is an empty probe of the home-date
/// index; the payments' join probes only the unpaid payments (SPEC §7.2 "Across days"). The
/// counts choose a direction only: both directions select the same rows.
async fn sqlite_row_statements(
    pool: &sqlx::SqlitePool,
    gateway: Gateway,
    date: NaiveDate,
) -> Result<(Vec<String>, Vec<String>)> {
    let unpaid = unpaid_statuses();
    // How many rows a statement selects, counting no further than `cap`.
    let count = |from_where: String, cap: i64| async move {
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {from_where} LIMIT $3) WHERE $2 = $2");
        let (n,): (i64,) = sqlx::query_as(&sql).bind(gateway).bind(date).bind(cap).fetch_one(pool).await?;
        Ok::<i64, StoreError>(n)
    };
    let elsewhere = |table: &str, op: &str, extra: &str| {
        format!("{table} WHERE gateway = $1 {extra} AND home_date {op} $2 AND home_date IS NOT NULL")
    };
    // The base rows (the day's size), then the rows of the other side that a base row's
    // counterpart can be besides base rows, counted no further than the base rows: the counts
    // cost no more than the day, whatever the history holds.
    let base_lines = count("settlement_lines WHERE gateway = $1 AND home_date IS NULL".into(), i64::MAX).await?
        + count("settlement_lines WHERE gateway = $1 AND home_date = $2".into(), i64::MAX).await?;
    // (Without the base payments' `txn_ref IS NOT NULL`, which the index does not hold: a count
    // to choose a direction.)
    let base_payments = count("payments WHERE gateway = $1 AND status = 'paid' AND home_date IS NULL".into(), i64::MAX)
        .await?
        + count("payments WHERE gateway = $1 AND status = 'paid' AND home_date = $2".into(), i64::MAX).await?;
    let cap = base_lines + 1;
    let other_payments = count(format!("payments WHERE gateway = $1 AND status IN ({unpaid})"), cap).await?
        + count(elsewhere("payments", "<", "AND status = 'paid'"), cap).await?
        + count(elsewhere("payments", ">", "AND status = 'paid'"), cap).await?;
    let cap = base_payments + 1;
    let other_lines = count(elsewhere("settlement_lines", "<", ""), cap).await?
        + count(elsewhere("settlement_lines", ">", ""), cap).await?;
    let base_line = "l.gateway = $1 AND l.txn_ref = p.txn_ref AND (l.home_date IS NULL OR l.home_date = $2)";
    let base_payment =
        "p.gateway = $1 AND p.txn_ref = l.txn_ref AND p.status = 'paid' AND (p.home_date IS NULL OR p.home_date = $2)";
    let mut payments: Vec<String> = PAYMENT_BASE.iter().map(|s| (*s).to_owned()).collect();
    if other_payments <= base_lines {
        // CROSS JOIN keeps SQLite's loop over the payments outside.
        let by = "SELECT p.rowid FROM payments p CROSS JOIN settlement_lines l WHERE p.gateway = $1";
        payments.push(format!("{by} AND p.status IN ({unpaid}) AND {base_line}"));
        for op in ["<", ">"] {
            payments.push(format!("{by} AND p.status = 'paid' AND p.home_date {op} $2 AND {base_line}"));
        }
    } else {
        payments.extend(PAYMENT_BY_LINES.iter().map(|s| (*s).to_owned()));
    }
    let mut lines: Vec<String> = LINE_BASE.iter().map(|s| (*s).to_owned()).collect();
    if other_lines <= base_payments {
        // Even when the count found no homed line: the counts ran before the snapshot the
        // statements read in, and a close may have homed lines since (an empty range costs
        // one probe of the home-date index).
        let by = "SELECT l.rowid FROM settlement_lines l CROSS JOIN payments p WHERE l.gateway = $1";
        for op in ["<", ">"] {
            lines.push(format!("{by} AND l.home_date {op} $2 AND {base_payment}"));
        }
    } else {
        lines.extend(LINE_BY_PAYMENTS.iter().map(|s| (*s).to_owned()));
    }
    Ok((payments, lines))
}

/// The packed columns of a payment row (`... AS x`, over `p` and `v` of `PAYMENT_JOINS`);
/// `time` renders a timestamp column as RFC 3339 text.
pub(super) fn payment_select(time: fn(&str) -> String) -> String {
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
    format!("{} AS x", pack_sql(&columns))
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
