//! The run's bulk read a page at a time (issue 23, peak memory): a day spanning several pages
//! hands every payment and line to the reader exactly once, in pages of at most the size asked
//! for, on SQLite (base rows, then the payments of lines without one, each step paged) and on
//! PostgreSQL (two streamed statements).

use std::collections::HashSet;

use feerecon::domain::payment::Gateway;
use feerecon::settlement::LineStatus;
use feerecon::store::recon_data::{ReconLine, ReconPaymentRow, ReconSink};

use crate::helpers::Db;
use crate::world::{World, across};

/// What a reader received, page by page.
#[derive(Default)]
struct Seen {
    /// (payment id, reference) of each payment received.
    payments: Vec<(String, String)>,
    /// (reference, line number) of each line received.
    lines: Vec<(String, i64)>,
    payment_pages: Vec<usize>,
    line_pages: Vec<usize>,
}

impl ReconSink for Seen {
    fn payments(&mut self, rows: &[ReconPaymentRow<'_>]) {
        self.payment_pages.push(rows.len());
        self.payments.extend(rows.iter().map(|r| (r.payment_id.to_owned(), r.txn_ref.to_owned())));
    }

    fn lines(&mut self, rows: &[ReconLine<'_>]) {
        self.line_pages.push(rows.len());
        self.lines.extend(rows.iter().map(|l| (l.txn_ref.to_owned(), l.line_no)));
    }

    fn refs_without_payment(&self) -> Vec<String> {
        let mut seen: HashSet<&str> = self.payments.iter().map(|(_, r)| r.as_str()).collect();
        self.lines.iter().filter(|(r, _)| seen.insert(r)).map(|(r, _)| r.clone()).collect()
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

across! {
    /// Nine paid payments (seven with a line, two without), three pending payments whose lines
    /// came (read by their lines' references), ten lines, read three rows a page: payments in
    /// four full pages, lines in 3 + 3 + 3 + 1, each row once and the same rows as one page.
    async fn a_day_of_several_pages_is_read_row_by_row_exactly_once(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let mut paid = Vec::new();
        for _ in 0..9 {
            paid.push(w.pay("2024-07-15", false).await);
        }
        let mut lost = Vec::new();
        for _ in 0..3 {
            lost.push(w.pay("2024-07-15", true).await);
        }
        let with_lines: Vec<_> = paid.iter().take(7).chain(&lost).collect();
        let lines: Vec<_> =
            with_lines.iter().map(|p| (*p, p.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00")).collect();
        w.import(&lines).await;
        let date = chrono::NaiveDate::from_ymd_opt(2024, 7, 15).unwrap();

        let mut seen = Seen::default();
        let frame = w.app.store.recon_read(Gateway::Vnpay, date, 3, &mut seen).await.unwrap();
        assert_eq!(frame.files.len(), 1);
        assert_eq!(seen.payment_pages, [3, 3, 3, 3], "twelve payments, three a page");
        assert_eq!(seen.line_pages, [3, 3, 3, 1], "ten lines, three a page");
        let want_payments = sorted(paid.iter().chain(&lost).map(|p| (p.id.clone(), p.txn_ref.clone())).collect());
        assert_eq!(sorted(seen.payments), want_payments, "each payment once");
        // The file's lines are numbered from 2 (its header is line 1).
        let want_lines = sorted(with_lines.iter().zip(2..).map(|(p, n)| (p.txn_ref.clone(), n)).collect());
        assert_eq!(sorted(seen.lines), want_lines, "each line once");

        let whole = w.app.store.recon_data(Gateway::Vnpay, date).await.unwrap();
        let one_page: Vec<_> = whole.payments().map(|r| r.unwrap().payment_id.to_owned()).collect();
        assert_eq!(sorted(one_page), sorted(want_payments.into_iter().map(|(id, _)| id).collect()));
        assert_eq!(whole.lines().count(), 10);
    }
}
