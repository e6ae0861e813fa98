//! The settlement files the simulated gateways send: each transaction as a line, with the
//! differences a test or the demo asks for, written in a gateway's profile format.

use std::sync::atomic::Ordering;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Sim, SimStatus, SimTxn, Simulator};
use crate::domain::payment::Gateway;
use crate::domain::vn_offset;

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
    pub fn settlement_lines(
        &self,
        gateway: Gateway,
        date: chrono::NaiveDate,
        d: &Discrepancies,
    ) -> (Vec<crate::settlement::Line>, Vec<crate::settlement::Line>) {
        use crate::settlement::{Line, LineStatus};
        let mut lines = Vec::new();
        let mut carried = Vec::new();
        let paid: Vec<SimTxn> = self
            .transactions()
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
                txn_time: t.paid_at.unwrap_or_else(|| self.sim.clock.now()),
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
                    .map_or_else(|| self.sim.clock.now(), |t| t.with_timezone(&Utc)),
                status: LineStatus::Refund,
            });
        }
        for i in 0..d.extra {
            let no = self.sim.next_no.fetch_add(1, Ordering::SeqCst);
            lines.push(Line {
                line_no: 0,
                gateway_txn_no: no.to_string(),
                txn_ref: format!("UNKNOWN{no}{i}"),
                amount: 50_000,
                fee: Sim::fee_for(50_000),
                txn_time: date
                    .and_hms_opt(12, 0, 0)
                    .and_then(|n| n.and_local_timezone(vn_offset()).single())
                    .map_or_else(|| self.sim.clock.now(), |t| t.with_timezone(&Utc)),
                status: LineStatus::Success,
            });
        }
        (lines, carried)
    }

    /// A settlement file of `lines` in `profile`'s format, as the gateway's portal exports it.
    pub fn settlement_file(profile: &crate::settlement::Profile, lines: &[crate::settlement::Line]) -> Vec<u8> {
        crate::settlement::write(profile, lines)
    }
}
