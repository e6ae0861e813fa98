//! The resolution postings table (README "Resolution postings"), row by row.

use super::*;

#[test]
fn amounts_split_by_kind_in_proportion_with_the_remainder_to_le_phi() {
    assert_eq!(by_kind(100, (50, 50)), (50, 50));
    assert_eq!(by_kind(100, (1, 2)), (33, 67));
    assert_eq!(by_kind(100, (0, 0)), (0, 100));
    assert_eq!(by_kind(100, (100, 0)), (100, 0));
}

/// An item of `category`: a line (`line`: its status, and whether it settles the payment) or a
/// payment only.
fn item(
    category: Category,
    line: Option<(LineStatus, bool)>,
    recorded: Option<i64>,
    settled: Option<i64>,
) -> ItemRecord {
    ItemRecord {
        item_key: "vnpay:k".into(),
        category,
        business_date: chrono::NaiveDate::from_ymd_opt(2024, 7, 15).unwrap(),
        case_code: None,
        payment_id: recorded.map(|_| "pay_1".into()),
        txn_ref: Some("R".into()),
        gateway_txn_no: Some("N".into()),
        line_status: line.map(|l| l.0),
        recorded_amount: recorded,
        settled_amount: settled,
        expected_amount: None,
        counterpart_date: None,
        fee: None,
        settles_payment: line.is_some_and(|l| l.1),
    }
}

/// A posting as (account, debit − credit) per account.
fn net(lines: &[Line]) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = Vec::new();
    for l in lines {
        match v.iter_mut().find(|(a, _)| *a == l.account) {
            Some((_, n)) => *n += l.debit - l.credit,
            None => v.push((l.account.clone(), l.debit - l.credit)),
        }
    }
    v.sort();
    v
}

fn ctx(duplicate: bool, paid: Option<(i64, i64)>, expected: Option<(i64, i64)>) -> MoneyContext {
    MoneyContext { duplicate, paid_by_kind: paid, expected_by_kind: expected, ..MoneyContext::default() }
}

/// README "Resolution postings", row by row: what each (category, action) posts, or that it is
/// refused. Every posting balances; accounts follow their meanings (SPEC §8).
#[test]
fn every_category_and_action_posts_what_the_table_says() {
    use Action::{Accept, ConfirmFromSettlement as Confirm, Refund as RefundIt, WriteOff};
    use Category::*;
    use LineStatus::{Refund as RefundLine, Success};
    let s = |v: &[(&str, i64)]| -> Option<Vec<(String, i64)>> {
        let mut v: Vec<(String, i64)> = v.iter().map(|(a, n)| ((*a).to_owned(), *n)).collect();
        v.sort();
        Some(v)
    };
    let none = || Some(vec![]);
    let plain = ctx(false, Some((0, 8_000)), Some((0, 8_000)));
    #[allow(clippy::type_complexity)]
    let rows: Vec<(&str, ItemRecord, Action, MoneyContext, Option<Vec<(String, i64)>>)> = vec![
        (
            "a repeated line is accepted",
            item(DuplicateSettlementLine, Some((Success, false)), None, Some(8_000)),
            Accept,
            plain.clone(),
            none(),
        ),
        (
            "a repeated line moves no money",
            item(DuplicateSettlementLine, Some((Success, false)), None, Some(8_000)),
            WriteOff,
            plain.clone(),
            None,
        ),
        (
            "a duplicate's refund was decided at confirmation",
            item(Refund, Some((RefundLine, false)), Some(8_000), Some(8_000)),
            Accept,
            ctx(true, Some((0, 8_000)), None),
            none(),
        ),
        (
            "a duplicate's refund line pays out what was decided: it is not written off",
            item(Refund, Some((RefundLine, false)), Some(8_000), Some(8_000)),
            WriteOff,
            ctx(true, Some((0, 8_000)), None),
            None,
        ),
        (
            "an undecided refund cannot be just accepted",
            item(Refund, Some((RefundLine, false)), Some(8_000), Some(8_000)),
            Accept,
            plain.clone(),
            None,
        ),
        (
            "a refund decided now takes revenue back by kind",
            item(Refund, Some((RefundLine, false)), Some(9_000), Some(9_000)),
            RefundIt,
            ctx(false, Some((3_000, 6_000)), None),
            s(&[("revenue:phi", 3_000), ("revenue:le_phi", 6_000), ("refunds_payable", -9_000)]),
        ),
        (
            "a refund nobody's payment explains is given up",
            item(Refund, Some((RefundLine, false)), None, Some(8_000)),
            WriteOff,
            ctx(false, None, None),
            s(&[("write_offs", 8_000), ("refunds_payable", -8_000)]),
        ),
        (
            "a stranger line is refunded out of suspense",
            item(MissingInRecords, Some((Success, false)), None, Some(8_000)),
            RefundIt,
            ctx(false, None, None),
            s(&[("suspense", 8_000), ("refunds_payable", -8_000)]),
        ),
        (
            "a stranger line is kept without a payment",
            item(MissingInRecords, Some((Success, false)), None, Some(8_000)),
            WriteOff,
            ctx(false, None, None),
            s(&[("suspense", 8_000), ("write_offs", -8_000)]),
        ),
        (
            "a stranger line's payment is confirmed (its own posting)",
            item(MissingInRecords, Some((Success, false)), None, Some(8_000)),
            Confirm,
            ctx(false, None, None),
            none(),
        ),
        (
            "suspense is not accepted",
            item(MissingInRecords, Some((Success, false)), None, Some(8_000)),
            Accept,
            ctx(false, None, None),
            None,
        ),
        (
            "an unconfirmed line is refunded out of suspense",
            item(UnconfirmedInRecords, Some((Success, false)), Some(8_000), Some(8_000)),
            RefundIt,
            plain.clone(),
            s(&[("suspense", 8_000), ("refunds_payable", -8_000)]),
        ),
        (
            "an unconfirmed line is kept",
            item(UnconfirmedInRecords, Some((Success, false)), Some(8_000), Some(8_000)),
            WriteOff,
            plain.clone(),
            s(&[("suspense", 8_000), ("write_offs", -8_000)]),
        ),
        (
            "an unconfirmed line of another amount cannot confirm its payment",
            item(UnconfirmedInRecords, Some((Success, false)), Some(8_000), Some(9_000)),
            Confirm,
            plain.clone(),
            None,
        ),
        (
            "an unconfirmed line's payment is confirmed",
            item(UnconfirmedInRecords, Some((Success, false)), Some(8_000), Some(8_000)),
            Confirm,
            plain.clone(),
            none(),
        ),
        (
            "a second charge is refunded out of suspense",
            item(DuplicatePayment, Some((Success, false)), Some(8_000), Some(8_000)),
            RefundIt,
            plain.clone(),
            s(&[("suspense", 8_000), ("refunds_payable", -8_000)]),
        ),
        (
            "a second charge is kept",
            item(DuplicatePayment, Some((Success, false)), Some(8_000), Some(8_000)),
            WriteOff,
            plain.clone(),
            s(&[("suspense", 8_000), ("write_offs", -8_000)]),
        ),
        (
            "a flagged duplicate's refund is payable already",
            item(DuplicatePayment, Some((Success, true)), Some(8_000), Some(8_000)),
            RefundIt,
            ctx(true, Some((0, 8_000)), None),
            none(),
        ),
        (
            "a flagged duplicate kept instead of refunded",
            item(DuplicatePayment, Some((Success, true)), Some(8_000), Some(8_000)),
            WriteOff,
            ctx(true, Some((0, 8_000)), None),
            s(&[("refunds_payable", 8_000), ("write_offs", -8_000)]),
        ),
        (
            "a flagged duplicate settled short, kept: what was settled is kept, the shortfall given up",
            item(DuplicatePayment, Some((Success, true)), Some(8_000), Some(7_000)),
            WriteOff,
            ctx(true, Some((0, 8_000)), None),
            s(&[("refunds_payable", 8_000), ("write_offs", -7_000), ("gateway_clearing:vnpay", -1_000)]),
        ),
        (
            "a flagged duplicate settled long, kept: all that was settled is kept",
            item(DuplicatePayment, Some((Success, true)), Some(8_000), Some(9_000)),
            WriteOff,
            ctx(true, Some((0, 8_000)), None),
            s(&[("refunds_payable", 8_000), ("gateway_clearing:vnpay", 1_000), ("write_offs", -9_000)]),
        ),
        (
            "a flagged duplicate without a line waits for it",
            item(DuplicatePayment, None, Some(8_000), None),
            Accept,
            ctx(true, Some((0, 8_000)), None),
            none(),
        ),
        (
            "a flagged duplicate never settled is cancelled",
            item(DuplicatePayment, None, Some(8_000), None),
            WriteOff,
            ctx(true, Some((0, 8_000)), None),
            s(&[("refunds_payable", 8_000), ("gateway_clearing:vnpay", -8_000)]),
        ),
        (
            "a shortfall is written off",
            item(AmountMismatch, Some((Success, true)), Some(8_000), Some(7_000)),
            WriteOff,
            plain.clone(),
            s(&[("write_offs", 1_000), ("gateway_clearing:vnpay", -1_000)]),
        ),
        (
            "an excess is kept",
            item(AmountMismatch, Some((Success, true)), Some(8_000), Some(9_000)),
            WriteOff,
            plain.clone(),
            s(&[("gateway_clearing:vnpay", 1_000), ("write_offs", -1_000)]),
        ),
        (
            "an excess is refunded",
            item(AmountMismatch, Some((Success, true)), Some(8_000), Some(9_000)),
            RefundIt,
            plain.clone(),
            s(&[("gateway_clearing:vnpay", 1_000), ("refunds_payable", -1_000)]),
        ),
        (
            "a shortfall has nothing to refund",
            item(AmountMismatch, Some((Success, true)), Some(8_000), Some(7_000)),
            RefundIt,
            plain.clone(),
            None,
        ),
        (
            "a fee the quote set stays",
            item(FeeMismatch, Some((Success, true)), Some(8_000), Some(8_000)),
            Accept,
            plain.clone(),
            none(),
        ),
        (
            "an overpaid phí is refunded from revenue:phi",
            item(FeeMismatch, Some((Success, true)), Some(8_000), Some(8_000)),
            RefundIt,
            ctx(false, Some((8_000, 0)), Some((5_000, 0))),
            s(&[("revenue:phi", 3_000), ("refunds_payable", -3_000)]),
        ),
        (
            "a fee moved between kinds is refunded net",
            item(FeeMismatch, Some((Success, true)), Some(8_000), Some(8_000)),
            RefundIt,
            ctx(false, Some((8_000, 0)), Some((2_000, 3_000))),
            s(&[("revenue:phi", 6_000), ("revenue:le_phi", -3_000), ("refunds_payable", -3_000)]),
        ),
        (
            "an underpaid fee has nothing to refund",
            item(FeeMismatch, Some((Success, true)), Some(5_000), Some(5_000)),
            RefundIt,
            ctx(false, Some((0, 5_000)), Some((0, 8_000))),
            None,
        ),
        (
            "a short settlement confirmation's shortfall in suspense is not accepted",
            item(FeeMismatch, Some((Success, true)), Some(5_000), Some(5_000)),
            Accept,
            ctx(false, Some((0, 8_000)), Some((0, 8_000))),
            None,
        ),
        (
            "a short settlement confirmation's shortfall is given up out of suspense",
            item(FeeMismatch, Some((Success, true)), Some(5_000), Some(5_000)),
            WriteOff,
            ctx(false, Some((0, 8_000)), Some((0, 8_000))),
            s(&[("write_offs", 3_000), ("suspense", -3_000)]),
        ),
        (
            "a short confirmation for a case since corrected to the amount paid: revenue to the case, suspense cleared",
            item(FeeMismatch, Some((Success, true)), Some(5_000), Some(5_000)),
            WriteOff,
            ctx(false, Some((0, 8_000)), Some((0, 5_000))),
            s(&[("revenue:le_phi", 3_000), ("suspense", -3_000)]),
        ),
        (
            "a short confirmation for a case that now owes less than was paid: the excess refunded",
            item(FeeMismatch, Some((Success, true)), Some(5_000), Some(5_000)),
            RefundIt,
            ctx(false, Some((0, 8_000)), Some((0, 4_000))),
            s(&[("refunds_payable", -1_000), ("revenue:le_phi", 4_000), ("suspense", -3_000)]),
        ),
        (
            "a short confirmation for a case that now owes more: the rest given up, revenue to the case",
            item(FeeMismatch, Some((Success, true)), Some(5_000), Some(5_000)),
            WriteOff,
            ctx(false, Some((0, 8_000)), Some((0, 9_000))),
            s(&[("revenue:le_phi", -1_000), ("suspense", -3_000), ("write_offs", 4_000)]),
        ),
        (
            "a settlement confirmation's excess in suspense is not accepted",
            item(FeeMismatch, Some((Success, true)), Some(9_000), Some(9_000)),
            Accept,
            ctx(false, Some((8_000, 0)), Some((8_000, 0))),
            None,
        ),
        (
            "a settlement confirmation's excess is kept out of suspense",
            item(FeeMismatch, Some((Success, true)), Some(9_000), Some(9_000)),
            WriteOff,
            ctx(false, Some((8_000, 0)), Some((8_000, 0))),
            s(&[("suspense", 1_000), ("write_offs", -1_000)]),
        ),
        (
            "a settlement confirmation's excess is refunded out of suspense",
            item(FeeMismatch, Some((Success, true)), Some(9_000), Some(9_000)),
            RefundIt,
            ctx(false, Some((8_000, 0)), Some((8_000, 0))),
            s(&[("suspense", 1_000), ("refunds_payable", -1_000)]),
        ),
        (
            "a missing line is waited for",
            item(MissingInSettlement, None, Some(8_000), None),
            Accept,
            plain.clone(),
            none(),
        ),
        (
            "a missing line is given up",
            item(MissingInSettlement, None, Some(8_000), None),
            WriteOff,
            plain.clone(),
            s(&[("write_offs", 8_000), ("gateway_clearing:vnpay", -8_000)]),
        ),
        (
            "nothing settled, nothing to refund",
            item(MissingInSettlement, None, Some(8_000), None),
            RefundIt,
            plain.clone(),
            None,
        ),
    ];
    for (what, i, action, c, expected) in rows {
        let got = movement(action, &i, Gateway::Vnpay, &c);
        match (got, expected) {
            (Ok(Some(lines)), Some(exp)) => {
                let debit: i64 = lines.iter().map(|l| l.debit).sum();
                let credit: i64 = lines.iter().map(|l| l.credit).sum();
                assert_eq!(debit, credit, "{what}: balances");
                assert_eq!(net(&lines), exp, "{what}");
            }
            (Ok(None), Some(exp)) => assert!(exp.is_empty(), "{what}: expected {exp:?}, moved nothing"),
            (Err(FinanceError::Invalid(_)), None) => {}
            (got, exp) => panic!("{what}: got {got:?}, expected {exp:?}"),
        }
    }
}
