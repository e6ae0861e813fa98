//! The settlement files the simulated gateways send: each transaction as a line, with the
//! differences a test or the demo asks for, written in a gateway's profile format.
//!
//! `Simulator::day_file` (and `POST /sim/settlement`, which `feerecon settlement simulate`
//! calls) writes one gateway's file of one business date as its portal would export it: the
//! lines of the day, plus the lines an earlier day's file put off to this one (`next_day`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Sim, SimStatus, SimTxn, Simulator};
use crate::domain::payment::Gateway;
use crate::domain::vn_offset;
use crate::settlement::{Line, Profile};

/// One gateway's settlement file of one business date.
#[derive(Debug, Clone)]
pub struct DayFile {
    /// A file name as the gateway's portal would give it (`vnpay-2024-07-15.csv`).
    pub name: String,
    /// The profile it is written in (the gateway's own, or `canonical`).
    pub profile: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// How many lines it holds (the header aside).
    pub lines: usize,
}

/// Differences to put into a gateway's settlement file (SPEC §7 tests and the demo).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discrepancies {
    /// References left out of the file.
    pub missing: Vec<String>,
    /// Lines for transactions the merchant never recorded.
    pub extra: u32,
    /// (reference, amount difference).
    pub wrong_amount: Vec<(String, i64)>,
    /// References whose line appears twice.
    pub duplicated: Vec<String>,
    /// References refunded on the day (a refund line).
    pub refunds: Vec<String>,
    /// References whose line the gateway puts in the next day's file instead.
    pub next_day: Vec<String>,
}

impl Simulator {
    /// The lines of `gateway`'s settlement for business date `date`: every transaction paid that
    /// day, with `d` applied. Returns the lines of that day's file and the lines carried to the
    /// next day's file.
    pub fn settlement_lines(&self, gateway: Gateway, date: NaiveDate, d: &Discrepancies) -> (Vec<Line>, Vec<Line>) {
        self.sim.settlement_lines(gateway, date, d)
    }

    /// `gateway`'s settlement file of `date` in `profile` (a profile name, `canonical`, or
    /// `None` for the gateway's own): every transaction paid that day with `d` applied, plus the
    /// lines an earlier file put off to this date. The lines `d.next_day` puts off are kept for
    /// the next date's file. Each date's file is meant to be asked for once: lines carried into
    /// it are handed over with it.
    pub fn day_file(
        &self,
        gateway: Gateway,
        date: NaiveDate,
        profile: Option<&str>,
        d: &Discrepancies,
    ) -> Result<DayFile, String> {
        self.sim.day_file(gateway, date, profile, d)
    }

    /// A settlement file of `lines` in `profile`'s format, as the gateway's portal exports it.
    pub fn settlement_file(profile: &Profile, lines: &[Line]) -> Vec<u8> {
        crate::settlement::write(profile, lines)
    }
}

impl Sim {
    fn settlement_lines(&self, gateway: Gateway, date: NaiveDate, d: &Discrepancies) -> (Vec<Line>, Vec<Line>) {
        use crate::settlement::LineStatus;
        let mut lines = Vec::new();
        let mut carried = Vec::new();
        let mut paid: Vec<SimTxn> = self.txns.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        paid.sort_by(|a, b| a.txn_ref.cmp(&b.txn_ref));
        let paid: Vec<SimTxn> = paid
            .into_iter()
            .filter(|t| t.gateway == gateway && t.status == SimStatus::Paid)
            .filter(|t| t.paid_at.is_some_and(|p| p.with_timezone(&vn_offset()).date_naive() == date))
            .collect();
        for t in &paid {
            if d.missing.contains(&t.txn_ref) {
                continue;
            }
            let delta = d.wrong_amount.iter().find(|(r, _)| *r == t.txn_ref).map_or(0, |(_, x)| *x);
            let line = Line {
                line_no: 0,
                gateway_txn_no: t.txn_no.unwrap_or(0).to_string(),
                txn_ref: t.txn_ref.clone(),
                amount: t.amount + delta,
                fee: t.fee,
                txn_time: t.paid_at.unwrap_or_else(|| self.clock.now()),
                status: LineStatus::Success,
            };
            if d.next_day.contains(&t.txn_ref) {
                carried.push(line);
                continue;
            }
            if d.duplicated.contains(&t.txn_ref) {
                lines.push(line.clone());
            }
            lines.push(line);
        }
        for t in paid.iter().filter(|t| d.refunds.contains(&t.txn_ref)) {
            lines.push(Line {
                line_no: 0,
                gateway_txn_no: format!("RF{}", t.txn_no.unwrap_or(0)),
                txn_ref: t.txn_ref.clone(),
                amount: t.amount,
                fee: 0,
                txn_time: date
                    .and_hms_opt(16, 0, 0)
                    .and_then(|n| n.and_local_timezone(vn_offset()).single())
                    .map_or_else(|| self.clock.now(), |t| t.with_timezone(&Utc)),
                status: LineStatus::Refund,
            });
        }
        for i in 0..d.extra {
            let no = self.next_no.fetch_add(1, Ordering::SeqCst);
            lines.push(Line {
                line_no: 0,
                gateway_txn_no: no.to_string(),
                txn_ref: format!("UNKNOWN{no}{i}"),
                amount: 50_000,
                fee: Sim::fee_for(50_000),
                txn_time: date
                    .and_hms_opt(12, 0, 0)
                    .and_then(|n| n.and_local_timezone(vn_offset()).single())
                    .map_or_else(|| self.clock.now(), |t| t.with_timezone(&Utc)),
                status: LineStatus::Success,
            });
        }
        (lines, carried)
    }

    fn day_file(
        &self,
        gateway: Gateway,
        date: NaiveDate,
        profile: Option<&str>,
        d: &Discrepancies,
    ) -> Result<DayFile, String> {
        let profile_name = profile.unwrap_or(gateway.as_str()).to_owned();
        // A name only: a network caller must not make the simulator read a file of its choice.
        let is_name = profile_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !is_name || profile_name.is_empty() {
            return Err(format!("profile {profile_name:?}: give a profile name (canonical, vnpay, momo, zalopay)"));
        }
        let dir = self.config.profiles.clone().unwrap_or_else(|| crate::embedded::PROFILES.into());
        let p = Profile::resolve(&dir, &profile_name)?;
        let (mut lines, carried) = self.settlement_lines(gateway, date, d);
        let next = date.succ_opt().ok_or("the date has no next day")?;
        let mut held = self.carried.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(earlier) = held.remove(&(gateway, date)) {
            lines.extend(earlier);
        }
        if !carried.is_empty() {
            held.entry((gateway, next)).or_default().extend(carried);
        }
        drop(held);
        for (i, l) in lines.iter_mut().enumerate() {
            l.line_no = i + 2;
        }
        Ok(DayFile {
            name: format!("{}-{date}.csv", gateway.as_str()),
            profile: profile_name,
            bytes: crate::settlement::write(&p, &lines),
            lines: lines.len(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettlementJson {
    gateway: Gateway,
    date: NaiveDate,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    discrepancies: Discrepancies,
}

/// `POST /sim/settlement {"gateway", "date", "profile", "discrepancies"}`: the gateway's
/// settlement file of that date, as CSV in the profile's format.
pub(super) async fn settlement_json(State(sim): State<Arc<Sim>>, Json(q): Json<SettlementJson>) -> Response {
    match sim.day_file(q.gateway, q.date, q.profile.as_deref(), &q.discrepancies) {
        Ok(f) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/csv".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", f.name)),
            ],
            f.bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": e}))).into_response(),
    }
}
