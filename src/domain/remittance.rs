//! Treasury remittance vocabulary (issue 19; `../shared/reference/after-collection.md` §2): the
//! periods collected fees are remitted by, their legal deadlines, the budget tag every revenue
//! entry of the ledger carries, and the names of the budget sub-items (tiểu mục). Pure.
//!
//! Facts the reference tags [S] are read in a source; [I] marks what this code builds on an
//! inferred fact (the README "Remittance" section lists them):
//! - month: deposit the month's phí into the fee account awaiting the budget by the **5th** of the
//!   next month, pay them into the budget by the **20th** [S: NĐ 120/2016 Art. 3(2) as amended,
//!   fee circulars, NĐ 215/2026];
//! - week: deposit by **Thursday** of the next week ("chậm nhất là ngày thứ năm hàng tuần",
//!   TT 25/2021 Art. 6(1)) [S]; paid into the budget by the 20th of the month after the week's
//!   first day [I: the monthly declaration's deadline, taken at the week's earliest month];
//! - day: deposit by the next day [I: no source read for a daily deadline]; paid in by the 20th
//!   of the next month [I];
//! - a deadline that falls on a Saturday or Sunday moves to the next Monday [I: the tax
//!   administration rule for deadlines on days off, not read for fee deposits]; public holidays
//!   are not known here.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike as _, Months, NaiveDate, TimeDelta, Weekday};
use serde::{Deserialize, Serialize};

/// How often a fee's collections are remitted: set per fee by the authority that set the fee
/// (NĐ 120/2016 Art. 3(2)(a)) [S]; the catalogue's `remittance_period`, default month.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Day,
    Week,
    #[default]
    Month,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 3] = [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
        }
    }
}

impl fmt::Display for PeriodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a remittance period: day, week or month")]
pub struct UnknownPeriodKind(pub String);

impl FromStr for PeriodKind {
    type Err = UnknownPeriodKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(PeriodKind::Day),
            "week" => Ok(PeriodKind::Week),
            "month" => Ok(PeriodKind::Month),
            other => Err(UnknownPeriodKind(other.to_owned())),
        }
    }
}

/// One remittance period: a calendar month, an ISO week (Monday to Sunday) or a day, in
/// Asia/Ho_Chi_Minh dates. Invariant: `start` is the period's first day (the 1st of a month, a
/// Monday for a week).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    kind: PeriodKind,
    start: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a period: YYYY-MM (a month), YYYY-Www (an ISO week) or YYYY-MM-DD (a day)")]
pub struct PeriodError(pub String);

impl Period {
    /// The period of `kind` that holds `date`.
    pub fn of(kind: PeriodKind, date: NaiveDate) -> Self {
        let start = match kind {
            PeriodKind::Day => date,
            PeriodKind::Week => date - TimeDelta::days(i64::from(date.weekday().num_days_from_monday())),
            PeriodKind::Month => date.with_day(1).unwrap_or(date),
        };
        Self { kind, start }
    }

    /// `2024-07` (a month), `2024-W30` (an ISO week) or `2024-07-15` (a day).
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        let err = || PeriodError(s.to_owned());
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
        let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok()).ok_or_else(err);
        if !digits(0..4) || b.get(4) != Some(&b'-') {
            return Err(err());
        }
        let year = i32::try_from(num(0..4)?).map_err(|_| err())?;
        match b.len() {
            7 if digits(5..7) => {
                let start = NaiveDate::from_ymd_opt(year, num(5..7)?, 1).ok_or_else(err)?;
                Ok(Self { kind: PeriodKind::Month, start })
            }
            8 if b[5] == b'W' && digits(6..8) => {
                let start = NaiveDate::from_isoywd_opt(year, num(6..8)?, Weekday::Mon).ok_or_else(err)?;
                Ok(Self { kind: PeriodKind::Week, start })
            }
            10 if b[7] == b'-' && digits(5..7) && digits(8..10) => {
                let start = NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?).ok_or_else(err)?;
                Ok(Self { kind: PeriodKind::Day, start })
            }
            _ => Err(err()),
        }
    }

    pub fn kind(self) -> PeriodKind {
        self.kind
    }

    /// The first day.
    pub fn start(self) -> NaiveDate {
        self.start
    }

    /// The last day (inclusive).
    pub fn end(self) -> NaiveDate {
        self.next().start - TimeDelta::days(1)
    }

    pub fn contains(self, d: NaiveDate) -> bool {
        self.start <= d && d <= self.end()
    }

    pub fn next(self) -> Self {
        let start = match self.kind {
            PeriodKind::Day => self.start + TimeDelta::days(1),
            PeriodKind::Week => self.start + TimeDelta::days(7),
            PeriodKind::Month => self.start + Months::new(1),
        };
        Self { kind: self.kind, start }
    }

    pub fn prev(self) -> Self {
        let start = match self.kind {
            PeriodKind::Day => self.start - TimeDelta::days(1),
            PeriodKind::Week => self.start - TimeDelta::days(7),
            PeriodKind::Month => self.start - Months::new(1),
        };
        Self { kind: self.kind, start }
    }

    /// Whether the period has ended on `today` (its last day is before today).
    pub fn is_over(self, today: NaiveDate) -> bool {
        self.end() < today
    }

    /// The legal deadlines of this period's remittance (module docs).
    pub fn deadlines(self) -> Deadlines {
        let next_month_day = |d: NaiveDate, day: u32| {
            let first = d.with_day(1).unwrap_or(d) + Months::new(1);
            first.with_day(day).unwrap_or(first)
        };
        let (deposit, pay_in) = match self.kind {
            PeriodKind::Month => (next_month_day(self.start, 5), next_month_day(self.start, 20)),
            // Thursday of the next week: the Sunday that ends the week, then four days.
            PeriodKind::Week => (self.end() + TimeDelta::days(4), next_month_day(self.start, 20)),
            PeriodKind::Day => (self.start + TimeDelta::days(1), next_month_day(self.start, 20)),
        };
        Deadlines { deposit_by: working_day(deposit), pay_in_by: working_day(pay_in) }
    }

    /// The Vietnamese words for the period on a transfer's content: `tháng 07/2024`,
    /// `tuần 30/2024 (22/07–28/07/2024)`, `ngày 15/07/2024`.
    pub fn label_vi(self) -> String {
        match self.kind {
            PeriodKind::Month => format!("tháng {}", self.start.format("%m/%Y")),
            PeriodKind::Week => format!(
                "tuần {:02}/{} ({}–{})",
                self.start.iso_week().week(),
                self.start.iso_week().year(),
                self.start.format("%d/%m"),
                self.end().format("%d/%m/%Y")
            ),
            PeriodKind::Day => format!("ngày {}", self.start.format("%d/%m/%Y")),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Month => write!(f, "{}", self.start.format("%Y-%m")),
            PeriodKind::Week => {
                let w = self.start.iso_week();
                write!(f, "{}-W{:02}", w.year(), w.week())
            }
            PeriodKind::Day => write!(f, "{}", self.start.format("%Y-%m-%d")),
        }
    }
}

impl FromStr for Period {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The day itself, or the Monday after a Saturday or Sunday [I].
fn working_day(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d + TimeDelta::days(2),
        Weekday::Sun => d + TimeDelta::days(1),
        _ => d,
    }
}

/// A period's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Deadlines {
    /// The collections must be in the treasury account awaiting the budget (tài khoản phí / lệ
    /// phí chờ nộp ngân sách, or the budget's revenue account for lệ phí) by this date: the
    /// deadline a recorded remittance is judged late against.
    pub deposit_by: NaiveDate,
    /// They must be paid from that account into the state budget by this date (information: the
    /// treasury moves them, the service does not see it).
    pub pay_in_by: NaiveDate,
}

/// What a revenue (or remitted) ledger entry says about the budget: the fee it is for, the fee's
/// budget sub-item (tiểu mục) and its remittance period. Written at the end of the entry's `refs`
/// as `fee=<id>;budget_subitem=<code>;remittance_period=<kind>` (empty values when unknown), so
/// the hash chain covers it and older exports keep their encoding (README "The ledger").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default, utoipa::ToSchema)]
pub struct BudgetTag {
    /// The catalogue fee id; `None` on a remittance's lines, which are per sub-item.
    pub fee: Option<String>,
    /// Four digits; `None` when the catalogue gives none.
    pub budget_subitem: Option<String>,
    pub period: PeriodKind,
}

impl BudgetTag {
    /// `refs` with the tag appended.
    pub fn append_to(&self, refs: &str) -> String {
        let tag = format!(
            "fee={};budget_subitem={};remittance_period={}",
            self.fee.as_deref().unwrap_or(""),
            self.budget_subitem.as_deref().unwrap_or(""),
            self.period
        );
        if refs.is_empty() { tag } else { format!("{refs};{tag}") }
    }

    /// The tag at the end of an entry's `refs`, if it has one (the last occurrence of each key;
    /// `remittance_period` must be there and name a period).
    pub fn from_refs(refs: &str) -> Option<Self> {
        let (mut fee, mut subitem, mut period) = (None, None, None);
        for part in refs.split(';') {
            let nonempty = |v: &str| (!v.is_empty()).then(|| v.to_owned());
            if let Some(v) = part.strip_prefix("fee=") {
                fee = Some(nonempty(v));
            } else if let Some(v) = part.strip_prefix("budget_subitem=") {
                subitem = Some(nonempty(v));
            } else if let Some(v) = part.strip_prefix("remittance_period=") {
                period = Some(v.parse::<PeriodKind>().ok()?);
            }
        }
        Some(Self { fee: fee.flatten(), budget_subitem: subitem.flatten(), period: period? })
    }
}

/// The budget sub-items (tiểu mục) of the reference's table (after-collection.md §2.3, from the
/// tax system's code tables) [S], with their names as the table gives them: the content of a
/// transfer's line. Verify against the Mục lục NSNN in force (the reference says so).
pub const SUBITEMS: &[(&str, &str)] = &[
    ("2421", "Phí khai thác và sử dụng thông tin trong CSDL quốc gia về dân cư"),
    ("2455", "Phí thẩm định tiêu chuẩn, điều kiện hành nghề lĩnh vực văn hóa, thể thao, du lịch"),
    ("2561", "Phí thẩm định hoạt động, tiêu chuẩn, điều kiện hành nghề lĩnh vực y tế"),
    ("2602", "Phí thẩm định báo cáo đánh giá tác động môi trường"),
    ("2627", "Phí thẩm định hồ sơ cấp GCN quyền sử dụng đất"),
    ("2634", "Phí thẩm định ĐTM, phương án cải tạo phục hồi môi trường"),
    ("2652", "Phí dịch vụ thanh toán trong hoạt động của KBNN"),
    ("2715", "Phí công chứng"),
    ("2716", "Phí chứng thực"),
    ("2718", "Phí đăng ký giao dịch bảo đảm"),
    ("2751", "Lệ phí quốc tịch"),
    ("2752", "Lệ phí cấp hộ chiếu"),
    ("2763", "Lệ phí cấp giấy phép lao động cho người nước ngoài"),
    ("2764", "Lệ phí cấp phiếu lý lịch tư pháp"),
    ("2767", "Lệ phí đăng ký cư trú"),
    ("2768", "Lệ phí cấp CMND, căn cước công dân"),
    ("2771", "Lệ phí hộ tịch"),
    ("2773", "Lệ phí đăng ký nuôi con nuôi"),
    ("2805", "Lệ phí cấp GCN quyền sử dụng đất, quyền sở hữu nhà, tài sản gắn liền với đất"),
    ("2806", "Lệ phí đăng ký giao dịch bảo đảm"),
    ("2815", "Lệ phí cấp giấy phép xây dựng"),
    ("2822", "Lệ phí cấp biển số nhà"),
    ("2823", "Lệ phí cấp GCN quyền sở hữu nhà ở, quyền sở hữu công trình xây dựng"),
    ("2826", "Lệ phí cấp giấy phép quy hoạch"),
    ("2851", "Lệ phí cấp GCN đăng ký kinh doanh"),
    ("2853", "Lệ phí cấp chứng nhận, chứng chỉ, giấy phép đối với ngành nghề kinh doanh"),
    ("2861", "Lệ phí đăng ký doanh nghiệp"),
    ("3056", "Lệ phí cấp văn bằng, chứng chỉ"),
    ("3057", "Lệ phí chứng thực"),
    ("3061", "Lệ phí công chứng"),
];

/// The reference's name of a sub-item, if it lists it.
pub fn subitem_name(code: &str) -> Option<&'static str> {
    SUBITEMS.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// Where a remittance stands: waiting for a second finance user, recorded (posted to the
/// ledger), or rejected (kept; the period may be requested again, its statement still frozen as
/// the first request froze it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemittanceState {
    PendingApproval,
    Recorded,
    Rejected,
}

impl RemittanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            RemittanceState::PendingApproval => "pending_approval",
            RemittanceState::Recorded => "recorded",
            RemittanceState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for RemittanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RemittanceState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending_approval" => Ok(RemittanceState::PendingApproval),
            "recorded" => Ok(RemittanceState::Recorded),
            "rejected" => Ok(RemittanceState::Rejected),
            other => Err(format!("{other:?} is not a remittance state")),
        }
    }
}

crate::domain::sql::sql_tag!(PeriodKind, RemittanceState);
crate::domain::sql::sql_as_text!(Period, render = |v| v.to_string(), parse = |s| Period::parse(s));

#[cfg(test)]
#[path = "remittance_tests.rs"]
mod tests;
