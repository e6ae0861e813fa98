//! The benchmark's days: day 0 is the measured date, day k ≥ 1 the k-th date before it (the
//! history of the 30-closed-days variant). Each day has its own cases, payments and references,
//! and a settlement file with a few discrepancies per thousand rows.

use std::io::Write;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

pub const DAY: &str = "2024-07-15";

#[derive(Clone, Copy)]
pub struct Day(pub usize);

impl Day {
    pub fn date(self) -> NaiveDate {
        NaiveDate::parse_from_str(DAY, "%Y-%m-%d").expect("a date") - TimeDelta::days(self.0 as i64)
    }

    /// 08:00 in Asia/Ho_Chi_Minh: the first payment of the day.
    pub fn start(self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-07-15T08:00:00+07:00").expect("a time").with_timezone(&Utc)
            - TimeDelta::days(self.0 as i64)
    }

    /// The i-th payment's time: one every 40 ms (a million fit in the day).
    pub fn at(self, i: usize) -> DateTime<Utc> {
        self.start() + TimeDelta::milliseconds(i as i64 * 40)
    }

    pub fn case_code(self, i: usize) -> String {
        let unit = i / 9999;
        format!("000.{:02}.{:02}.H62-{}-{:04}", unit / 100, unit % 100, self.date().format("%y%m%d"), i % 9999 + 1)
    }

    pub fn payment_id(self, i: usize) -> String {
        format!("pay_{:02}{i:010}", self.0)
    }

    pub fn txn_ref(self, i: usize) -> String {
        format!("R{:02}{i:09}", self.0)
    }

    /// The gateway's number (days up to 10,000,000 payments).
    pub fn txn_no(self, i: usize) -> u64 {
        1_000_000_000 + self.0 as u64 * 10_000_000 + i as u64
    }
}

/// Writes the day's payments (`payments`, as the bench's in-memory step reads them) and its
/// settlement file (`lines`, canonical profile). Per thousand payments: one missing line, one
/// wrong amount, one duplicated line, one refund line, one pending payment, one duplicate
/// payment, one fee mismatch, one stranger line.
pub fn write_day(day: Day, n: usize, payments: Option<&mut dyn Write>, lines: &mut dyn Write) -> std::io::Result<()> {
    let mut payments = payments;
    if let Some(p) = payments.as_mut() {
        writeln!(p, "payment_id,case_code,txn_ref,gateway_txn_no,amount,status,paid_at,duplicate,expected")?;
    }
    writeln!(lines, "gateway_txn_no,txn_ref,amount,fee,txn_time,status")?;
    for i in 0..n {
        let time = day.at(i).with_timezone(&feerecon::domain::vn_offset()).format("%Y-%m-%d %H:%M:%S").to_string();
        let k = i % 1000;
        let (status, duplicate, expected) = match k {
            4 => ("pending", false, 135_000),
            5 => ("paid", true, 135_000),
            6 => ("paid", false, 115_000),
            _ => ("paid", false, 135_000),
        };
        let (txn_ref, no) = (day.txn_ref(i), day.txn_no(i));
        if let Some(p) = payments.as_mut() {
            writeln!(
                p,
                "{},{},{txn_ref},{no},135000,{status},{time},{duplicate},{expected}",
                day.payment_id(i),
                day.case_code(i)
            )?;
        }
        let amount = if k == 1 { 134_000 } else { 135_000 };
        if k != 0 {
            let line = format!("{no},{txn_ref},{amount},1485,{time},success");
            writeln!(lines, "{line}")?;
            if k == 2 {
                writeln!(lines, "{line}")?;
            }
        }
        if k == 3 {
            writeln!(lines, "RF{no},{txn_ref},135000,0,{time},refund")?;
        }
        if k == 7 {
            writeln!(lines, "{},UNKNOWN{:02}{i:09},50000,1100,{time},success", no + 2_000_000_000, day.0)?;
        }
    }
    Ok(())
}
