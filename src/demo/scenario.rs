//! The demo's business day, decided before anything runs: which cases are filed, and what each
//! citizen, gateway and settlement file does. Pure and deterministic: the same date, case count
//! and seed give the same scenario, so the same figures, on every run.
//!
//! Cases are the embedded case fixtures moved to the demo's date (new codes, receipt times in
//! the morning); the first ones take each channel and each subject in turn, so every channel
//! and subject appears. Each case's due is quoted locally (the server quotes the same way, and
//! the demo checks it does) to give it a script: no gateway (waived or budget-covered), a plain
//! payment, or one of the day's twists. The twists that concern the settlement files name the
//! cases whose lines the gateways get wrong.

use chrono::NaiveDate;

use crate::domain::payment::Gateway;
use crate::domain::{Case, CaseInput, Channel, Subject};

/// A small deterministic generator (SplitMix64): the scenario must not change with a library's
/// version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// What goes wrong (or not) with one payment's callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    Plain,
    /// The callback arrives `copies` extra times, one after another or all at once.
    Duplicates {
        copies: u32,
        concurrent: bool,
    },
    /// A forged callback (signed with another key) arrives first, then the genuine one.
    Forged,
    /// The callback never arrives: the status query finds the payment.
    Lost,
    /// The callback and the status answers name 10,000 đ more than the payment: nobody can
    /// confirm it until finance confirms it from the settlement line.
    WrongAmount,
}

/// What happens to one case's payment(s) on the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `citizen_due` is 0: the payment is `waived` or `budget_covered`, no gateway involved.
    NoGateway,
    Pay {
        gateway: Gateway,
        twist: Twist,
    },
    /// The first attempt fails; the citizen pays on another gateway.
    FailThenRetry {
        first: Gateway,
        then: Gateway,
    },
    /// The attempt fails and the citizen does not come back.
    FailAndGiveUp {
        gateway: Gateway,
    },
    /// The citizen opens the pay page and leaves: the payment expires after its TTL.
    Abandon {
        gateway: Gateway,
    },
    /// Two payments are opened and both are paid: the second is a duplicate to refund.
    PaidTwice {
        first: Gateway,
        second: Gateway,
    },
}

/// The cases whose settlement lines the gateways get wrong (indexes into the cases).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// VNPAY lists this line twice.
    pub doubled: Option<usize>,
    /// VNPAY leaves this line out.
    pub missing: Option<usize>,
    /// VNPAY lists one line no payment has (a stranger's).
    pub strangers: u32,
    /// MoMo settles 500 đ less.
    pub short: Option<usize>,
    /// MoMo refunds this payment on the day (a refund line).
    pub refunded: Option<usize>,
    /// ZaloPay puts this line in the next day's file.
    pub late: Option<usize>,
    /// The one-stop office corrects this case after its payment (adds `poor_household`): the
    /// citizen paid more than the case now owes.
    pub corrected: Option<usize>,
}

/// One case of the day.
#[derive(Debug, Clone)]
pub struct PlannedCase {
    pub case: Case,
    /// The body of `PUT /api/v1/cases/{code}`.
    pub body: serde_json::Value,
    pub citizen_due: i64,
    pub budget_due: i64,
    pub script: Script,
}

/// The day.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub date: NaiveDate,
    pub cases: Vec<PlannedCase>,
    pub settlement: Settlement,
}

/// The amounts each gateway takes (SPEC §4.3): VNPAY 5,000 ≤ a < 1,000,000,000; MoMo 1,000 ≤
/// a ≤ 50,000,000; ZaloPay and DVCQG (no limit known, [I]) any positive amount.
pub fn accepts(gateway: Gateway, amount: i64) -> bool {
    match gateway {
        Gateway::Vnpay => (5_000..1_000_000_000).contains(&amount),
        Gateway::Momo => (1_000..=50_000_000).contains(&amount),
        Gateway::Zalopay | Gateway::Dvcqg => amount > 0,
    }
}

/// The body of a case's `PUT`.
fn body_of(c: &Case) -> serde_json::Value {
    serde_json::json!({
        "procedure_code": c.procedure_code.as_str(),
        "applicant_name": c.applicant_name,
        "channel": c.channel,
        "subjects": c.subjects,
        "facts": c.facts,
        "quantity": c.quantity,
        "received_at": c.received_at,
        "receiving_unit": c.receiving_unit.as_str(),
    })
}

/// `count` cases filed on `date`, made from `templates` (the fixtures) in a seeded order. A
/// template the quote refuses (`quote` gives `None`) is skipped.
pub fn cases(
    date: NaiveDate,
    count: usize,
    templates: &[Case],
    seed: u64,
    quote: &dyn Fn(&Case) -> Option<(i64, i64)>,
) -> anyhow::Result<Vec<PlannedCase>> {
    anyhow::ensure!(!templates.is_empty(), "no case fixtures to make the demo's cases from");
    let mut order: Vec<usize> = (0..templates.len()).collect();
    Rng::new(seed).shuffle(&mut order);
    let yymmdd = date.format("%y%m%d").to_string();
    let mut seq: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    let mut out = Vec::with_capacity(count);
    let mut tries = 0usize;
    while out.len() < count {
        anyhow::ensure!(tries < count * 4 + templates.len(), "the case fixtures give too few cases the policy quotes");
        let t = &templates[order[tries % order.len()]];
        tries += 1;
        let i = out.len();
        let unit = t.receiving_unit.as_str().to_owned();
        let n = seq.entry(unit.clone()).or_insert(0);
        *n += 1;
        anyhow::ensure!(*n <= 9999, "more than 9,999 demo cases for one unit on one date");
        // The first cases take each channel, then each subject, in turn.
        let channel = Channel::ALL.get(i).copied().unwrap_or(t.channel);
        let subjects: Vec<String> = match i.checked_sub(Channel::ALL.len()).and_then(|k| Subject::ALL.get(k)) {
            Some(s) => vec![s.as_str().to_owned()],
            None => t.subjects.iter().map(|s| s.as_str().to_owned()).collect(),
        };
        let minutes = (i * 7) % 90;
        let input = CaseInput {
            case_code: Some(format!("{unit}-{yymmdd}-{n:04}")),
            procedure_code: t.procedure_code.as_str().to_owned(),
            applicant_name: t.applicant_name.clone(),
            channel: channel.as_str().to_owned(),
            subjects,
            facts: t.facts.iter().map(|f| f.as_str().to_owned()).collect(),
            quantity: Some(t.quantity),
            received_at: format!("{}T{:02}:{:02}:00+07:00", date.format("%Y-%m-%d"), 7 + minutes / 60, minutes % 60),
            receiving_unit: unit,
        };
        let case = input.validate(None).map_err(|e| anyhow::anyhow!("demo case {i}: {e}"))?;
        let Some((citizen_due, budget_due)) = quote(&case) else {
            // The number goes to the next case of the unit.
            if let Some(n) = seq.get_mut(case.receiving_unit.as_str()) {
                *n -= 1;
            }
            continue;
        };
        out.push(PlannedCase { body: body_of(&case), case, citizen_due, budget_due, script: Script::NoGateway });
    }
    Ok(out)
}

/// Gives each case its script and names the settlement's wrong lines. `corrected_due` quotes a
/// case with `poor_household` added (for the correction after payment).
pub fn script(
    mut cases: Vec<PlannedCase>,
    date: NaiveDate,
    seed: u64,
    corrected_due: &dyn Fn(&Case) -> Option<i64>,
) -> Scenario {
    use Gateway::{Momo, Vnpay, Zalopay};
    let mut rng = Rng::new(seed ^ 0x5EED_CA5E);
    let mut payable: Vec<usize> = (0..cases.len()).filter(|i| cases[*i].citizen_due > 0).collect();
    rng.shuffle(&mut payable);
    let mut taken = vec![false; cases.len()];
    // Takes the next untaken payable case that every gateway in `on` accepts.
    let mut take = |on: &[Gateway], cases: &[PlannedCase], extra: &dyn Fn(usize) -> bool| -> Option<usize> {
        let i = payable
            .iter()
            .copied()
            .find(|i| !taken[*i] && on.iter().all(|g| accepts(*g, cases[*i].citizen_due)) && extra(*i))?;
        taken[i] = true;
        Some(i)
    };
    let any = |_: usize| true;
    let twists: [(Script, &[Gateway]); 11] = [
        (Script::Pay { gateway: Vnpay, twist: Twist::Forged }, &[Vnpay]),
        (Script::Pay { gateway: Vnpay, twist: Twist::Duplicates { copies: 2, concurrent: false } }, &[Vnpay]),
        (Script::Pay { gateway: Zalopay, twist: Twist::Duplicates { copies: 3, concurrent: true } }, &[Zalopay]),
        (Script::Pay { gateway: Momo, twist: Twist::Lost }, &[Momo]),
        (Script::Pay { gateway: Vnpay, twist: Twist::WrongAmount }, &[Vnpay]),
        (Script::PaidTwice { first: Vnpay, second: Zalopay }, &[Vnpay, Zalopay]),
        (Script::FailThenRetry { first: Momo, then: Vnpay }, &[Momo, Vnpay]),
        (Script::FailThenRetry { first: Zalopay, then: Momo }, &[Zalopay, Momo]),
        (Script::FailAndGiveUp { gateway: Vnpay }, &[Vnpay]),
        (Script::Abandon { gateway: Momo }, &[Momo]),
        (Script::Abandon { gateway: Zalopay }, &[Zalopay]),
    ];
    for (s, on) in twists {
        if let Some(i) = take(on, &cases, &any) {
            cases[i].script = s;
        }
    }
    let plain = |g: Gateway| Script::Pay { gateway: g, twist: Twist::Plain };
    let mut settlement = Settlement { strangers: 1, ..Settlement::default() };
    for (slot, g) in [
        (&mut settlement.doubled, Vnpay),
        (&mut settlement.missing, Vnpay),
        (&mut settlement.short, Momo),
        (&mut settlement.refunded, Momo),
        (&mut settlement.late, Zalopay),
    ] {
        *slot = take(&[g], &cases, &any);
        if let Some(i) = *slot {
            cases[i].script = plain(g);
        }
    }
    let lower = |i: usize| corrected_due(&cases[i].case).is_some_and(|d| d < cases[i].citizen_due);
    settlement.corrected = take(&[Vnpay], &cases, &lower);
    if let Some(i) = settlement.corrected {
        cases[i].script = plain(Vnpay);
    }
    // Everyone else pays once, on a gateway that takes the amount; a few fail first.
    for i in 0..cases.len() {
        if cases[i].citizen_due == 0 || taken[i] {
            continue;
        }
        let due = cases[i].citizen_due;
        let on: Vec<Gateway> =
            [Vnpay, Vnpay, Vnpay, Momo, Momo, Zalopay].into_iter().filter(|g| accepts(*g, due)).collect();
        let g = on[rng.below(on.len())];
        cases[i].script = match rng.below(100) {
            0..=3 => {
                let others: Vec<Gateway> = on.iter().copied().filter(|o| *o != g).collect();
                match others.first() {
                    Some(then) => Script::FailThenRetry { first: g, then: *then },
                    None => plain(g),
                }
            }
            4 => Script::FailAndGiveUp { gateway: g },
            _ => plain(g),
        };
    }
    Scenario { date, cases, settlement }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Vec<Case> {
        let path = std::path::Path::new(crate::embedded::CASES[0]);
        let bytes = crate::embedded::read(path).unwrap();
        crate::cases::parse_cases(path, &bytes, &|_| true, &|_| {}).unwrap()
    }

    fn day(count: usize, seed: u64) -> Scenario {
        let date = NaiveDate::from_ymd_opt(2024, 7, 15).unwrap();
        // A stand-in quote: the sequence number's last digits, a few of them free.
        let quote = |c: &Case| {
            let n: i64 = c.case_code.as_str()[22..].parse().unwrap();
            Some(if n % 5 == 0 { (0, 0) } else { (n * 3_000, 0) })
        };
        let cases = cases(date, count, &templates(), seed, &quote).unwrap();
        script(cases, date, seed, &|c| Some(quote(c).unwrap().0 / 2))
    }

    #[test]
    fn the_same_seed_gives_the_same_day_and_another_seed_another() {
        let codes = |s: &Scenario| s.cases.iter().map(|c| (c.case.case_code.to_string(), c.script)).collect::<Vec<_>>();
        assert_eq!(codes(&day(80, 7)), codes(&day(80, 7)));
        assert_ne!(codes(&day(80, 7)), codes(&day(80, 8)));
    }

    #[test]
    fn every_channel_subject_and_twist_appears_and_gateways_take_the_amounts() {
        let s = day(120, 1);
        assert_eq!(s.cases.len(), 120);
        for ch in Channel::ALL {
            assert!(s.cases.iter().any(|c| c.case.channel == *ch), "{ch}");
        }
        for sub in Subject::ALL {
            assert!(s.cases.iter().any(|c| c.case.subjects.contains(sub)), "{sub}");
        }
        for t in [Twist::Forged, Twist::Lost, Twist::WrongAmount] {
            assert_eq!(
                s.cases.iter().filter(|c| matches!(c.script, Script::Pay { twist, .. } if twist == t)).count(),
                1
            );
        }
        assert!(s.cases.iter().any(|c| matches!(c.script, Script::PaidTwice { .. })));
        let st = &s.settlement;
        let named = [st.doubled, st.missing, st.short, st.refunded, st.late, st.corrected];
        assert!(named.iter().all(Option::is_some), "{st:?}");
        let mut distinct: Vec<usize> = named.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), named.len(), "each wrong line is another case's");
        for c in &s.cases {
            let ok = match c.script {
                Script::NoGateway => c.citizen_due == 0,
                Script::Pay { gateway, .. } | Script::FailAndGiveUp { gateway } | Script::Abandon { gateway } => {
                    accepts(gateway, c.citizen_due)
                }
                Script::FailThenRetry { first, then } => {
                    first != then && accepts(first, c.citizen_due) && accepts(then, c.citizen_due)
                }
                Script::PaidTwice { first, second } => accepts(first, c.citizen_due) && accepts(second, c.citizen_due),
            };
            assert!(ok, "{:?} for {}", c.script, c.citizen_due);
        }
        let codes: std::collections::BTreeSet<_> = s.cases.iter().map(|c| c.case.case_code.to_string()).collect();
        assert_eq!(codes.len(), s.cases.len(), "case codes are unique");
        assert!(s.cases.iter().all(|c| c.case.case_code.as_str().contains("-240715-")));
    }
}
