//! Periods, deadlines and budget tags.

use super::*;
use crate::domain::BusinessDate;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn p(s: &str) -> Period {
    Period::parse(s).unwrap()
}

/// "Chậm nhất là ngày 05 hàng tháng, tổ chức thu phí phải gửi số tiền phí đã thu của tháng trước
/// vào tài khoản phí chờ nộp ngân sách" (fee circulars under NĐ 120/2016 Art. 3(2)(a) as amended
/// by NĐ 82/2023; NĐ 215/2026) and paid into the budget by the 20th (NĐ 215/2026) [S].
#[test]
fn a_month_is_deposited_by_the_5th_and_paid_in_by_the_20th_of_the_next_month() {
    // July 2024: 5 August is a Monday, 20 August a Tuesday.
    let july = p("2024-07");
    assert_eq!((july.kind(), july.start(), july.end()), (PeriodKind::Month, d("2024-07-01"), d("2024-07-31")));
    assert_eq!(july.deadlines(), Deadlines { deposit_by: d("2024-08-05"), pay_in_by: d("2024-08-20") });
    // December rolls into the next year; February ends on the 29th in a leap year.
    let dec = p("2024-12");
    assert_eq!(dec.deadlines().deposit_by, d("2025-01-06"), "5 January 2025 is a Sunday");
    assert_eq!(dec.deadlines().pay_in_by, d("2025-01-20"));
    assert_eq!(p("2024-02").end(), d("2024-02-29"));
    assert_eq!(p("2025-02").end(), d("2025-02-28"));
}

/// A deadline on a day off moves to the next working day [I: the tax administration rule, not read
/// for fee deposits]; public holidays are not known.
#[test]
fn a_deadline_on_a_weekend_moves_to_monday() {
    // 5 October 2024 is a Saturday; 20 April 2024 a Saturday; 5 April 2026 a Sunday.
    assert_eq!(p("2024-09").deadlines().deposit_by, d("2024-10-07"));
    assert_eq!(p("2024-03").deadlines().pay_in_by, d("2024-04-22"));
    assert_eq!(p("2026-03").deadlines().deposit_by, d("2026-04-06"));
    // A weekday stays.
    assert_eq!(p("2024-10").deadlines().deposit_by, d("2024-11-05"));
}

/// TT 25/2021/TT-BTC Art. 6(1): the previous week's fees are deposited "chậm nhất là ngày thứ năm
/// hàng tuần" [S]; the week is an ISO week, Monday to Sunday [I].
#[test]
fn a_week_runs_monday_to_sunday_and_is_deposited_by_the_next_thursday() {
    let w = p("2024-W30");
    assert_eq!((w.start(), w.end()), (d("2024-07-22"), d("2024-07-28")));
    assert_eq!(w.start().weekday(), Weekday::Mon);
    assert_eq!(w.to_string(), "2024-W30");
    assert_eq!(w.deadlines().deposit_by, d("2024-08-01"), "Thursday after Sunday 28 July");
    assert_eq!(w.deadlines().deposit_by.weekday(), Weekday::Thu);
    assert_eq!(w.deadlines().pay_in_by, d("2024-08-20"));
    // Every day of the week falls in it.
    for day in 22..=28 {
        assert_eq!(Period::of(PeriodKind::Week, d(&format!("2024-07-{day}"))), w);
    }
    // ISO weeks: 30 December 2024 is in week 1 of 2025; 2026 has a week 53.
    let w1 = Period::of(PeriodKind::Week, d("2024-12-31"));
    assert_eq!(w1.to_string(), "2025-W01");
    assert_eq!(w1.start(), d("2024-12-30"));
    assert_eq!(w1.deadlines().pay_in_by, d("2025-01-20"), "from the month of the week's first day");
    assert_eq!(p("2026-W53").start(), d("2026-12-28"));
    assert!(Period::parse("2025-W53").is_err(), "2025 has 52 ISO weeks");
    assert_eq!(w.next().to_string(), "2024-W31");
    assert_eq!(w.prev().to_string(), "2024-W29");
}

/// NĐ 120/2016 Art. 3(2)(a) allows daily deposits [S]; by the next working day is [I].
#[test]
fn a_day_is_deposited_by_the_next_working_day() {
    let fri = p("2024-07-19");
    assert_eq!((fri.kind(), fri.end()), (PeriodKind::Day, d("2024-07-19")));
    assert_eq!(fri.deadlines().deposit_by, d("2024-07-22"), "Saturday moves to Monday");
    assert_eq!(p("2024-07-15").deadlines().deposit_by, d("2024-07-16"));
    assert_eq!(p("2024-07-31").deadlines().pay_in_by, d("2024-08-20"));
    assert_eq!(p("2024-07-31").next(), p("2024-08-01"));
}

/// Periods are of business dates in Asia/Ho_Chi_Minh (SPEC §2): a payment at 00:30 on 1 August
/// at +07:00 (17:30 UTC on 31 July) is August's.
#[test]
fn periods_follow_asia_ho_chi_minh_dates() {
    // 31 July 2024 17:30 UTC is 1 August 00:30 at +07:00: August's.
    let t = chrono::DateTime::parse_from_rfc3339("2024-07-31T17:30:00Z").unwrap().to_utc();
    let date = BusinessDate::of(t).naive();
    assert_eq!(Period::of(PeriodKind::Month, date), p("2024-08"));
    let t = chrono::DateTime::parse_from_rfc3339("2024-07-31T16:59:59Z").unwrap().to_utc();
    assert_eq!(Period::of(PeriodKind::Month, BusinessDate::of(t).naive()), p("2024-07"));
    // A month is over only once its last day has passed at +07:00.
    assert!(!p("2024-07").is_over(d("2024-07-31")));
    assert!(p("2024-07").is_over(d("2024-08-01")));
}

#[test]
fn periods_parse_strictly_and_print_back() {
    for s in ["2024-07", "2024-W01", "2024-W30", "2024-07-15", "2024-12"] {
        assert_eq!(p(s).to_string(), s);
    }
    for bad in ["2024-7", "2024-13", "24-07", "2024-W00", "2024-W5", "2024-07-32", "2024-02-30", "2024/07", "", "July"]
    {
        assert!(Period::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(p("2024-12").next(), p("2025-01"));
    assert_eq!(p("2025-01").prev(), p("2024-12"));
    assert!(p("2024-07") < p("2024-08"));
    assert_eq!(p("2024-07").label_vi(), "tháng 07/2024");
    assert_eq!(p("2024-W30").label_vi(), "tuần 30/2024 (22/07–28/07/2024)");
    assert_eq!(p("2024-07-15").label_vi(), "ngày 15/07/2024");
}

#[test]
fn a_budget_tag_rides_at_the_end_of_refs_and_reads_back() {
    let t =
        BudgetTag { fee: Some("le_phi_ket_hon".into()), budget_subitem: Some("2771".into()), period: PeriodKind::Week };
    let refs = t.append_to("payment=pay_1;raw_sha256=ab");
    assert_eq!(refs, "payment=pay_1;raw_sha256=ab;fee=le_phi_ket_hon;budget_subitem=2771;remittance_period=week");
    assert_eq!(BudgetTag::from_refs(&refs), Some(t));
    let bare = BudgetTag { fee: None, budget_subitem: None, period: PeriodKind::Month };
    assert_eq!(bare.append_to(""), "fee=;budget_subitem=;remittance_period=month");
    assert_eq!(BudgetTag::from_refs(&bare.append_to("")), Some(bare));
    // Entries written before tags existed, or of other accounts, carry none.
    assert_eq!(BudgetTag::from_refs("payment=pay_1;raw_sha256=ab"), None);
    assert_eq!(BudgetTag::from_refs("fee=x;budget_subitem=1;remittance_period=year"), None);
}

#[test]
fn sub_items_of_the_reference_have_names() {
    assert_eq!(subitem_name("2771"), Some("Lệ phí hộ tịch"));
    assert_eq!(subitem_name("9999"), None);
    assert!(SUBITEMS.iter().all(|(c, _)| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit())));
}
