use proptest::prelude::*;

use super::report::{Inputs, Summary, digests, report_hash};
use super::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Test inputs live for the whole test: leaking their text is the simplest owner.
fn text(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

fn pay(
    id: &str,
    txn_ref: &str,
    no: Option<&str>,
    amount: i64,
    status: PaymentStatus,
    date: &str,
) -> PaymentIn<'static> {
    PaymentIn {
        payment_id: text(id),
        case_code: text(format!("case-{id}")),
        case_version: 1,
        txn_ref: text(txn_ref),
        gateway_txn_no: no.map(text),
        amount,
        status,
        business_date: (status == PaymentStatus::Paid).then(|| d(date)),
        home: None,
        duplicate: false,
        expected: Some(amount),
        phi: 0,
        le_phi: amount,
    }
}

fn line(
    file: usize,
    n: usize,
    no: &str,
    txn_ref: &str,
    amount: i64,
    status: LineStatus,
    date: &str,
) -> LineIn<'static> {
    LineIn {
        file,
        line_no: n,
        gateway_txn_no: text(no),
        txn_ref: text(txn_ref),
        amount,
        fee: amount / 100,
        status,
        business_date: d(date),
        first: true,
        home: None,
    }
}

fn lines(mut v: Vec<LineIn<'static>>) -> Vec<LineIn<'static>> {
    first_occurrences(&mut v);
    v
}

fn shas(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:064x}")).collect()
}

fn closed(dates: &[&str]) -> Closed {
    dates.iter().map(|s| d(s)).collect()
}

fn cat(o: &Outcome, key: &str) -> Category {
    item(o, key).category
}

fn item<'o>(o: &'o Outcome, key: &str) -> &'o Item<'o> {
    o.items.iter().find(|i| i.key == key).unwrap_or_else(|| panic!("no item {key}: {:?}", o.items))
}

use LineStatus::{Refund, Success};
use PaymentStatus::{Paid, Pending};

#[test]
fn one_scenario_per_category() {
    let mut dup = pay("p5", "R5", Some("N5"), 100_000, Paid, "2024-07-15");
    dup.duplicate = true;
    let mut fee = pay("p7", "R7", Some("N7"), 100_000, Paid, "2024-07-15");
    fee.expected = Some(80_000);
    let payments = vec![
        pay("p1", "R1", Some("N1"), 100_000, Paid, "2024-07-15"), // matched
        pay("p2", "R2", Some("N2"), 100_000, Paid, "2024-07-15"), // its line twice: duplicate line
        pay("p4", "R4", None, 100_000, Pending, "2024-07-15"),    // paid at the gateway, not here
        dup,                                                      // flagged duplicate
        pay("p6", "R6", Some("N6"), 100_000, Paid, "2024-07-15"), // settled 90,000
        fee,                                                      // quote changed since
        pay("p8", "R8", Some("N8"), 100_000, Paid, "2024-07-15"), // no line
        pay("p9", "R9", Some("N9"), 100_000, Paid, "2024-07-15"), // a second charge too
    ];
    let lines = lines(vec![
        line(0, 2, "N1", "R1", 100_000, Success, "2024-07-15"),
        line(0, 3, "N2", "R2", 100_000, Success, "2024-07-15"),
        line(0, 4, "N2", "R2", 100_000, Success, "2024-07-15"),
        line(0, 5, "N1R", "R1", 100_000, Refund, "2024-07-15"),
        line(0, 6, "N3", "R3", 50_000, Success, "2024-07-15"),
        line(0, 7, "N4", "R4", 100_000, Success, "2024-07-15"),
        line(0, 8, "N5", "R5", 100_000, Success, "2024-07-15"),
        line(0, 9, "N6", "R6", 90_000, Success, "2024-07-15"),
        line(0, 10, "N7", "R7", 100_000, Success, "2024-07-15"),
        line(0, 11, "N9", "R9", 100_000, Success, "2024-07-15"),
        line(0, 12, "N9B", "R9", 100_000, Success, "2024-07-15"),
    ]);
    let o = reconcile("vnpay", d("2024-07-15"), &payments, &lines, &shas(1), &Closed::new());
    assert_eq!(cat(&o, "vnpay:N1:success"), Category::Matched);
    assert_eq!(cat(&o, "vnpay:N2:success"), Category::Matched);
    assert_eq!(cat(&o, &format!("vnpay:N2:success:{}:4", &shas(1)[0][..12])), Category::DuplicateSettlementLine);
    assert_eq!(cat(&o, "vnpay:N1R:refund"), Category::Refund);
    assert_eq!(cat(&o, "vnpay:N3:success"), Category::MissingInRecords);
    assert_eq!(cat(&o, "vnpay:N4:success"), Category::UnconfirmedInRecords);
    assert_eq!(cat(&o, "vnpay:N5:success"), Category::DuplicatePayment);
    assert_eq!(cat(&o, "vnpay:N6:success"), Category::AmountMismatch);
    assert_eq!(cat(&o, "vnpay:N7:success"), Category::FeeMismatch);
    assert_eq!(cat(&o, "vnpay:payment:p8"), Category::MissingInSettlement);
    assert_eq!(cat(&o, "vnpay:N9:success"), Category::Matched);
    assert_eq!(cat(&o, "vnpay:N9B:success"), Category::DuplicatePayment, "a second charge");
    assert!(o.items.iter().all(|i| i.counterpart_date.is_none()), "one date, no counterpart elsewhere");
    let t = o.totals;
    assert_eq!(t.recorded_paid, 7 * 100_000);
    assert_eq!(t.settled_gross, 8 * 100_000 + 50_000 + 90_000 - 100_000);
    assert_eq!(t.refunds, 100_000);
    assert_eq!(t.settled_net, t.settled_gross - t.gateway_fees - t.refunds);
    assert_eq!(t.by_kind.duplicates, 100_000);
    assert_eq!(t.by_kind.le_phi + t.by_kind.phi + t.by_kind.duplicates + t.by_kind.unallocated, t.recorded_paid);
    // Every category appears in the summary, zeros included.
    assert_eq!(o.summary.len(), 9);
    assert_eq!(o.summary[8].0, Category::MissingInSettlement);
    assert_eq!(o.counted_lines.len(), lines.len());
    assert_eq!(o.counted_payments.len(), 7);
}

#[test]
fn a_payment_at_midnight_settled_in_the_next_day_s_file_matches_on_its_own_date() {
    let payments = vec![pay("p1", "R1", Some("N1"), 50_000, Paid, "2024-07-15")];
    let late = lines(vec![line(1, 2, "N1", "R1", 50_000, Success, "2024-07-16")]);
    // Before the 16th's file: the payment of the 15th is missing in settlement.
    let o = reconcile("momo", d("2024-07-15"), &payments, &[], &shas(2), &Closed::new());
    assert_eq!(cat(&o, "momo:payment:p1"), Category::MissingInSettlement);
    // With it: matched, on the 15th (the line's natural date is its payment's), not on the 16th.
    let o15 = reconcile("momo", d("2024-07-15"), &payments, &late, &shas(2), &Closed::new());
    assert_eq!(cat(&o15, "momo:N1:success"), Category::Matched);
    assert_eq!(o15.items[0].business_date, d("2024-07-16"), "the item keeps its line's own date");
    let o16 = reconcile("momo", d("2024-07-16"), &payments, &late, &shas(2), &Closed::new());
    assert!(o16.items.is_empty());
}

/// Issue 12 item 1: an event a closed date counted (its home) stays there; only an event without
/// a home moves to the first open date after its closed natural date. (The test this replaces
/// pinned the opposite: an event moved on from every date that was closed now.)
#[test]
fn an_event_counted_on_a_closed_date_stays_there() {
    let mut p = pay("p1", "R1", Some("N1"), 50_000, Paid, "2024-07-15");
    // The 15th was closed before the callback came: no home yet, counted on the 16th.
    let c15 = closed(&["2024-07-15"]);
    let o16 = reconcile("vnpay", d("2024-07-16"), std::slice::from_ref(&p), &[], &shas(0), &c15);
    assert_eq!(o16.totals.recorded_paid, 50_000);
    assert_eq!(o16.counted_payments, vec![0]);
    assert_eq!(item(&o16, "vnpay:payment:p1").business_date, d("2024-07-15"), "its own date kept");
    // The 16th closes and gives it its home; once the 16th is closed too, the 17th does not count it again.
    p.home = Some(d("2024-07-16"));
    let both = closed(&["2024-07-15", "2024-07-16"]);
    let o17 = reconcile("vnpay", d("2024-07-17"), std::slice::from_ref(&p), &[], &shas(0), &both);
    assert!(o17.items.is_empty(), "{:?}", o17.items);
    assert_eq!(o17.totals.recorded_paid, 0);
    // Without a home it would: the first open date after the 15th is the 17th now.
    p.home = None;
    let o17 = reconcile("vnpay", d("2024-07-17"), std::slice::from_ref(&p), &[], &shas(0), &both);
    assert_eq!(o17.totals.recorded_paid, 50_000);
    assert_eq!(first_open(d("2024-07-15"), &both), d("2024-07-17"));
}

/// Issue 12 item 3, a late line: the 15th counted the payment (missing in settlement); its line
/// comes after the 15th closed. The 16th's item is the line's, matched against the 15th's
/// payment: it names that date and counts only its own event.
#[test]
fn a_late_line_is_classified_against_the_payment_of_the_closed_date_and_counts_only_itself() {
    let mut p = pay("p1", "R1", Some("N1"), 50_000, Paid, "2024-07-15");
    p.home = Some(d("2024-07-15"));
    let l = lines(vec![line(1, 2, "N1", "R1", 50_000, Success, "2024-07-15")]);
    let c = closed(&["2024-07-15"]);
    let o15 = reconcile("vnpay", d("2024-07-15"), std::slice::from_ref(&p), &l, &shas(2), &c);
    assert!(o15.items.iter().all(|i| i.line_status.is_none()), "the line is not an item of the closed date");
    let o16 = reconcile("vnpay", d("2024-07-16"), std::slice::from_ref(&p), &l, &shas(2), &c);
    let i = item(&o16, "vnpay:N1:success");
    assert_eq!((i.category, i.counterpart_date, i.settles_payment), (Category::Matched, Some(d("2024-07-15")), true));
    assert_eq!((o16.totals.recorded_paid, o16.totals.settled_gross), (0, 50_000));
    assert_eq!(o16.counterparts, vec![("vnpay:N1:success".to_owned(), "vnpay:payment:p1".to_owned())]);
}

/// Issue 12 item 3, a late callback: the 15th counted the line (unconfirmed); the callback comes
/// after the 15th closed. The 16th's item is the payment's, matched against the 15th's line, and
/// counts only the payment: the line's settled amount is not counted again.
#[test]
fn a_late_callback_is_classified_against_the_line_of_the_closed_date_and_counts_only_itself() {
    let p = pay("p1", "R1", Some("N1"), 8_000, Paid, "2024-07-15");
    let mut l = lines(vec![line(0, 2, "N1", "R1", 8_000, Success, "2024-07-15")]);
    l[0].home = Some(d("2024-07-15"));
    let c = closed(&["2024-07-15"]);
    let o16 = reconcile("vnpay", d("2024-07-16"), std::slice::from_ref(&p), &l, &shas(1), &c);
    let i = item(&o16, "vnpay:payment:p1");
    assert_eq!(
        (i.category, i.counterpart_date, i.settled_amount),
        (Category::Matched, Some(d("2024-07-15")), Some(8_000))
    );
    assert_eq!((o16.totals.recorded_paid, o16.totals.settled_gross), (8_000, 0));
    assert_eq!(o16.counterparts, vec![("vnpay:payment:p1".to_owned(), "vnpay:N1:success".to_owned())]);
    // Once the 16th gave the payment its home, the 17th counts neither.
    let mut p = p;
    p.home = Some(d("2024-07-16"));
    let ps = [p];
    let o17 = reconcile("vnpay", d("2024-07-17"), &ps, &l, &shas(1), &closed(&["2024-07-15", "2024-07-16"]));
    assert!(o17.items.is_empty() && o17.totals.recorded_paid == 0 && o17.totals.settled_gross == 0);
}

/// SPEC §7.2: a line whose refund was paid out (its refund line counted) no longer settles a
/// payment that turns up for it later: that payment is missing in settlement.
#[test]
fn a_refunded_line_settles_no_payment_that_turns_up_later() {
    let p = pay("p1", "R1", Some("N1"), 8_000, Paid, "2024-07-16");
    let mut l = lines(vec![
        line(0, 2, "N1", "R1", 8_000, Success, "2024-07-15"),
        line(1, 2, "N1", "R1", 8_000, Refund, "2024-07-15"),
    ]);
    l[0].home = Some(d("2024-07-15"));
    l[1].home = Some(d("2024-07-15"));
    let o = reconcile("vnpay", d("2024-07-16"), std::slice::from_ref(&p), &l, &shas(2), &closed(&["2024-07-15"]));
    assert_eq!(cat(&o, "vnpay:payment:p1"), Category::MissingInSettlement);
    assert_eq!(item(&o, "vnpay:payment:p1").counterpart_date, None);
    // Refunded on the same date as the payment: the line still settles it (the refund is its own item).
    let mut same = lines(vec![
        line(0, 2, "N1", "R1", 8_000, Success, "2024-07-16"),
        line(0, 3, "N1", "R1", 8_000, Refund, "2024-07-16"),
    ]);
    same.iter_mut().for_each(|x| x.home = None);
    let o = reconcile("vnpay", d("2024-07-16"), std::slice::from_ref(&p), &same, &shas(1), &Closed::new());
    assert_eq!((cat(&o, "vnpay:N1:success"), cat(&o, "vnpay:N1:refund")), (Category::Matched, Category::Refund));
}

// ------------------------------------------------------------------ properties

fn arb_world() -> impl Strategy<Value = (Vec<PaymentIn<'static>>, Vec<LineIn<'static>>)> {
    let payment = (0u8..4, 1i64..5, 0u8..3, any::<bool>(), any::<bool>())
        .prop_map(|(day, amount, status, dup, no)| (day, amount, status, dup, no));
    (
        proptest::collection::vec(payment, 0..40),
        proptest::collection::vec((0usize..50, 0u8..5, 0u8..4, 0u8..3, 0usize..3), 0..60),
    )
        .prop_map(|(ps, ls)| {
            let dates = ["2024-07-14", "2024-07-15", "2024-07-16", "2024-07-17"];
            let payments: Vec<PaymentIn<'static>> = ps
                .iter()
                .enumerate()
                .map(|(i, (day, amount, status, dup, no))| {
                    let st = [PaymentStatus::Paid, PaymentStatus::Paid, PaymentStatus::Pending][*status as usize];
                    let mut p = pay(
                        &format!("p{i:03}"),
                        &format!("R{i}"),
                        no.then(|| format!("N{i}")).as_deref(),
                        amount * 1000,
                        st,
                        dates[*day as usize],
                    );
                    p.duplicate = *dup && st == PaymentStatus::Paid;
                    p.expected = Some(if i % 7 == 0 { p.amount + 1 } else { p.amount });
                    p.phi = p.amount / 3;
                    p.le_phi = p.amount - p.phi;
                    p
                })
                .collect();
            let lines: Vec<LineIn<'static>> = ls
                .iter()
                .enumerate()
                .map(|(n, (target, variant, day, kind, file))| {
                    // Most lines settle a payment; some are strangers, some repeat a number.
                    let (txn_ref, no, amount) = match (payments.get(*target), variant) {
                        (Some(p), 0..=2) => (
                            p.txn_ref.to_string(),
                            p.gateway_txn_no.map_or(format!("N{target}"), str::to_owned),
                            p.amount,
                        ),
                        (Some(p), 3) => (p.txn_ref.to_owned(), format!("X{target}"), p.amount + 500),
                        _ => (format!("Z{target}"), format!("Z{target}"), 7000),
                    };
                    let status = if *kind == 2 { LineStatus::Refund } else { LineStatus::Success };
                    line(*file, n + 2, &no, &txn_ref, amount, status, dates[*day as usize])
                })
                .collect();
            (payments, self::lines(lines))
        })
}

fn run_all<'a>(payments: &'a [PaymentIn<'_>], lines: &'a [LineIn<'_>]) -> Vec<Outcome<'a>> {
    ["2024-07-14", "2024-07-15", "2024-07-16", "2024-07-17"]
        .iter()
        .map(|day| reconcile("vnpay", d(day), payments, lines, &shas(3), &Closed::new()))
        .collect()
}

proptest! {
    #[test]
    fn every_line_and_every_paid_payment_land_in_exactly_one_item((payments, lines) in arb_world()) {
        let runs = run_all(&payments, &lines);
        let mut seen_lines = std::collections::HashMap::new();
        let mut seen_payments: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut dup_mentions: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for o in &runs {
            for i in &o.items {
                if i.line_status.is_some() {
                    *seen_lines.entry(i.key.clone()).or_insert(0) += 1;
                    if matches!(i.category, Category::Matched | Category::AmountMismatch | Category::FeeMismatch) {
                        *seen_payments.entry(i.payment_id.unwrap().to_owned()).or_insert(0) += 1;
                    }
                    if i.category == Category::DuplicatePayment {
                        *dup_mentions.entry(i.payment_id.unwrap().to_owned()).or_insert(0) += 1;
                    }
                } else {
                    *seen_payments.entry(i.payment_id.unwrap().to_owned()).or_insert(0) += 1;
                }
            }
        }
        prop_assert_eq!(seen_lines.values().sum::<usize>(), lines.len());
        prop_assert!(seen_lines.values().all(|n| *n == 1));
        for p in payments.iter().filter(|p| p.status == PaymentStatus::Paid) {
            let n = seen_payments.get(p.payment_id).copied().unwrap_or(0);
            if p.duplicate {
                prop_assert!(n + dup_mentions.get(p.payment_id).copied().unwrap_or(0) >= 1, "{} is in no item", p.payment_id);
                prop_assert!(n <= 1);
            } else {
                prop_assert_eq!(n, 1, "{} must be in exactly one item", p.payment_id);
            }
        }
    }

    #[test]
    fn category_sums_equal_the_totals((payments, lines) in arb_world()) {
        for o in run_all(&payments, &lines) {
            let s = Summary::from(&o);
            let success_cats = [Category::MissingInRecords, Category::UnconfirmedInRecords, Category::AmountMismatch, Category::FeeMismatch, Category::Matched];
            let line_dup_payment: i64 = o.items.iter().filter(|i| i.category == Category::DuplicatePayment && i.line_status.is_some()).map(Item::amount).sum();
            let success: i64 = success_cats.iter().map(|c| s.get(*c).amount).sum::<i64>() + line_dup_payment;
            prop_assert_eq!(success, o.totals.settled_gross);
            prop_assert_eq!(s.refund.amount, o.totals.refunds);
            prop_assert_eq!(o.totals.settled_net, o.totals.settled_gross - o.totals.gateway_fees - o.totals.refunds);
            let by = o.totals.by_kind;
            prop_assert_eq!(by.phi + by.le_phi + by.duplicates + by.unallocated, o.totals.recorded_paid);
            let count: i64 = o.summary.iter().map(|(_, n, _)| *n).sum();
            prop_assert_eq!(count as usize, o.items.len());
        }
    }

    #[test]
    fn shuffling_the_inputs_changes_nothing_and_the_hash_is_stable((payments, lines) in arb_world(), seed in any::<u64>()) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (mut p2, mut l2) = (payments.clone(), lines.clone());
        p2.shuffle(&mut rng);
        l2.shuffle(&mut rng);
        for day in ["2024-07-14", "2024-07-15", "2024-07-16", "2024-07-17"] {
            let a = reconcile("vnpay", d(day), &payments, &lines, &shas(3), &Closed::new());
            let b = reconcile("vnpay", d(day), &p2, &l2, &shas(3), &Closed::new());
            prop_assert_eq!(&a.items, &b.items);
            prop_assert_eq!(a.totals, b.totals);
            let hash = |o: &Outcome, ps: &[PaymentIn]| {
                let (pd, cd) = digests(o, ps);
                let inputs = Inputs { settlement_files: vec![], policy_hash: "sha256:p".into(), payments_digest: pd, cases_digest: cd };
                report_hash(day, "vnpay", &inputs, &Summary::from(o), &o.totals, o)
            };
            prop_assert_eq!(hash(&a, &payments), hash(&b, &p2));
            prop_assert_eq!(hash(&a, &payments), hash(&reconcile("vnpay", d(day), &payments, &lines, &shas(3), &Closed::new()), &payments));
        }
    }
}

fn keyed(key: String) -> Item<'static> {
    Item {
        key,
        category: Category::Matched,
        business_date: d("2024-07-15"),
        case_code: None,
        payment_id: None,
        txn_ref: None,
        gateway_txn_no: None,
        line_status: None,
        recorded_amount: None,
        settled_amount: None,
        expected_amount: None,
        counterpart_date: None,
        fee: None,
        settles_payment: false,
    }
}

proptest! {
    /// The prefix sort orders exactly as sorting the keys as strings does, whatever their
    /// lengths and shared prefixes (including NUL bytes, which the zero padding resembles).
    #[test]
    fn items_sort_as_their_keys_do(tails in proptest::collection::vec("[ab\u{0}]{0,20}", 0..200)) {
        let mut items: Vec<Item<'static>> = tails.iter().map(|t| keyed(format!("vnpay:{t}"))).collect();
        let mut expected: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
        expected.sort();
        super::sort_by_key(&mut items, "vnpay:".len());
        let got: Vec<String> = items.into_iter().map(|i| i.key).collect();
        prop_assert_eq!(got, expected);
    }
}

proptest! {
    /// `Outcome::item` finds each item by its key, and nothing for a key no item has.
    #[test]
    fn every_item_is_found_by_its_key((payments, lines) in arb_world()) {
        for o in run_all(&payments, &lines) {
            for i in &o.items {
                prop_assert_eq!(o.item(&i.key), Some(i));
            }
            prop_assert_eq!(o.item("vnpay:payment:nobody"), None);
            prop_assert_eq!(o.item(""), None);
        }
    }
}

/// The items borrow the inputs' text, not the inputs: a run drops its inputs (about 200 MiB
/// on a million-row day) once matched, and keeps the items through the save.
#[test]
fn the_items_outlive_the_inputs() {
    let text = String::from("p1R1N1");
    let payments = vec![PaymentIn {
        payment_id: &text[..2],
        txn_ref: &text[2..4],
        gateway_txn_no: Some(&text[4..]),
        ..pay("x", "x", None, 100_000, Paid, "2024-07-15")
    }];
    let mut lines = vec![LineIn {
        gateway_txn_no: &text[4..],
        txn_ref: &text[2..4],
        ..line(0, 2, "x", "x", 100_000, Success, "2024-07-15")
    }];
    first_occurrences(&mut lines);
    let o = reconcile("vnpay", d("2024-07-15"), &payments, &lines, &shas(1), &Closed::new());
    drop((payments, lines));
    let i = o.item("vnpay:N1:success").expect("the line's item");
    assert_eq!((i.category, i.payment_id, i.txn_ref), (Category::Matched, Some("p1"), Some("R1")));
}

/// A day of every category on 2024-07-16, the 15th closed: matched lines and payments with keys
/// alike in their first sixteen bytes and more, a late line matched against a payment the 15th
/// counted, a payment matched by a line homed on the 15th, and each exception.
fn mixed_day() -> (Vec<PaymentIn<'static>>, Vec<LineIn<'static>>, Closed) {
    let day = "2024-07-16";
    let mut payments = Vec::new();
    let mut ls = Vec::new();
    for n in 0..12 {
        let (id, r, no) =
            (format!("pay_01JABCDEFGHJK{n:02}"), format!("REF-{n}"), format!("VNP2024071600000000{n:02}"));
        payments.push(pay(&id, &r, if n % 2 == 0 { Some(&no) } else { None }, 100_000 + n, Paid, day));
        ls.push(line(0, 2 + n as usize, &no, &r, 100_000 + n, Success, day));
    }
    // A late line for a payment the closed 15th counted: matched, its counterpart the 15th.
    let mut early = pay("pay_early", "R-EARLY", Some("N-EARLY"), 70_000, Paid, "2024-07-15");
    early.home = Some(d("2024-07-15"));
    payments.push(early);
    ls.push(line(0, 20, "N-EARLY", "R-EARLY", 70_000, Success, "2024-07-15"));
    // Payments of the 16th whose lines the 15th counted: one matched, one short.
    payments.push(pay("pay_late", "R-LATE", Some("N-LATE"), 60_000, Paid, day));
    let mut l = line(0, 21, "N-LATE", "R-LATE", 60_000, Success, "2024-07-15");
    l.home = Some(d("2024-07-15"));
    ls.push(l);
    payments.push(pay("pay_short", "R-SHORT", None, 60_000, Paid, day));
    let mut l = line(0, 22, "N-SHORT", "R-SHORT", 59_000, Success, "2024-07-15");
    l.home = Some(d("2024-07-15"));
    ls.push(l);
    // One of each exception.
    let mut dup = pay("p5", "R5", Some("N5"), 100_000, Paid, day);
    dup.duplicate = true;
    let mut fee = pay("p7", "R7", Some("N7"), 100_000, Paid, day);
    fee.expected = Some(80_000);
    let mut dup_alone = pay("p10", "R10", None, 40_000, Paid, day);
    dup_alone.duplicate = true;
    payments.extend([
        pay("p2", "R2", Some("N2"), 100_000, Paid, day),
        pay("p4", "R4", None, 100_000, Pending, day),
        dup,
        pay("p6", "R6", Some("N6"), 100_000, Paid, day),
        fee,
        pay("p8", "R8", Some("N8"), 100_000, Paid, day),
        pay("p9", "R9", Some("N9"), 100_000, Paid, day),
        dup_alone,
    ]);
    ls.extend([
        line(1, 3, "N2", "R2", 100_000, Success, day),
        line(1, 4, "N2", "R2", 100_000, Success, day),
        line(1, 5, "VNP202407160000000001R", "REF-1", 100_001, Refund, day),
        line(1, 6, "N3", "R3", 50_000, Success, day),
        line(1, 7, "N4", "R4", 100_000, Success, day),
        line(1, 8, "N5", "R5", 100_000, Success, day),
        line(1, 9, "N6", "R6", 90_000, Success, day),
        line(1, 10, "N7", "R7", 100_000, Success, day),
        line(1, 11, "N9", "R9", 100_000, Success, day),
        line(1, 12, "N9B", "R9", 100_000, Success, day),
    ]);
    (payments, lines(ls), closed(&["2024-07-15"]))
}

/// Everything an outcome says, as text.
fn described(o: &Outcome<'_>) -> String {
    format!(
        "{:#?}\nsummary {:?}\ntotals {:?}\nfiles {:?}\npayments {:?}\ncounted {:?} {:?}\ncounterparts {:#?}\n",
        o.items, o.summary, o.totals, o.files, o.payments, o.counted_lines, o.counted_payments, o.counterparts
    )
}

/// The compact form gives back exactly the items, sums, totals and counterparts `reconcile`
/// produced before matched items were kept compact (`testdata/mixed_day.txt`, written by the
/// code of `c6d436c`), for a day of every category; and `category_of` finds every item.
#[test]
fn compact_items_expand_to_what_the_matcher_produced_before() {
    let (payments, lines, closed) = mixed_day();
    let date = d("2024-07-16");
    let shas = shas(2);
    let o = reconcile("vnpay", date, &payments, &lines, &shas, &closed);
    assert_eq!(described(&o), include_str!("testdata/mixed_day.txt"));
    let src = Source { gateway: "vnpay", date, payments: &payments, lines: &lines, file_shas: &shas };
    let c = reconcile_compact(src, &closed);
    assert!(c.items.iter().all(|i| i.category != Category::Matched));
    assert_eq!((c.matched.len(), c.len()), (16, o.items.len()));
    assert_eq!(c.all_items(src).collect::<Vec<_>>(), o.items);
    assert_eq!((&c.summary, c.totals, &c.counterparts), (&o.summary, o.totals, &o.counterparts));
    for i in &o.items {
        assert_eq!(c.category_of(&i.key, &src), Some(i.category), "{}", i.key);
    }
    assert_eq!(c.category_of("vnpay:payment:nobody", &src), None);
}
