//! Fee engine tests against the fixtures and against generated policies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{Channel, Fact, Money, ProcedureCode, Subject, UnitCode};

pub(super) fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

pub(super) fn engine(policy: &str) -> FeeEngine {
    FeeEngine::load(&fixture("catalogue.toml"), &fixture(&format!("policies/{policy}.toml"))).unwrap()
}

pub(super) fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A receiving unit of the old Vĩnh Phúc (H62 [I]), as in the case fixtures.
pub(super) const VP_UNIT: &str = "000.00.12.H62";

/// The facts of a case received by `unit` (None: unknown), with `facts` tags.
pub(super) fn facts_at<'a>(
    p: &'a ProcedureCode,
    channel: Channel,
    on: &str,
    subjects: &'a [Subject],
    case_facts: &'a [Fact],
    unit: Option<&'a UnitCode>,
    qty: u32,
) -> Facts<'a> {
    Facts {
        case_code: None,
        procedure_code: p,
        channel,
        subjects,
        case_facts,
        receiving_unit: unit,
        quantity: qty,
        as_of: date(on),
    }
}

/// (citizen, budget, the applied rule of each item) for a case with facts, at a unit.
#[allow(clippy::too_many_arguments)] // a test helper: every fact of a case, spelled out
pub(super) fn quote_full(
    e: &FeeEngine,
    proc_: &str,
    channel: Channel,
    on: &str,
    subjects: &[Subject],
    case_facts: &[Fact],
    unit: &str,
    qty: u32,
) -> (i64, i64, Vec<Option<String>>) {
    let p = ProcedureCode::parse(proc_).unwrap();
    let unit = UnitCode::parse(unit).unwrap();
    let q = e.quote(&facts_at(&p, channel, on, subjects, case_facts, Some(&unit), qty)).unwrap();
    (q.citizen_due.dong(), q.budget_due.dong(), q.items.iter().map(|i| i.applied.map(|a| a.rule.id.clone())).collect())
}

/// (citizen, budget, the applied rule of each item) for a case without facts at a Vĩnh Phúc unit.
fn quote(
    e: &FeeEngine,
    proc_: &str,
    channel: Channel,
    on: &str,
    subjects: &[Subject],
    qty: u32,
) -> (i64, i64, Vec<Option<String>>) {
    quote_full(e, proc_, channel, on, subjects, &[], VP_UNIT, qty)
}

/// The same for a late registration.
fn quote_late(
    e: &FeeEngine,
    proc_: &str,
    channel: Channel,
    on: &str,
    subjects: &[Subject],
) -> (i64, i64, Vec<Option<String>>) {
    quote_full(e, proc_, channel, on, subjects, &[Fact::LateRegistration], VP_UNIT, 1)
}

use Channel::{Counter, OnlineFull, OnlinePartial};

#[test]
fn every_rule_in_the_fixtures_gives_the_amount_the_law_gives() {
    let vp = engine("vinh-phuc");
    // (procedure, channel, date, subjects, quantity) → (citizen, budget, rule of the first item)
    type Row<'a> = (&'a str, Channel, &'a str, &'a [Subject], u32, i64, i64, Option<&'a str>);
    let table: &[Row<'_>] = &[
        // TT 63/2023: driving licence online 115,000 from 2023-12-01 to 2025-12-31, then the base.
        ("1.002804", OnlineFull, "2024-03-01", &[], 1, 115_000, 0, Some("TT63-GPLX-ONLINE")),
        ("1.002804", OnlinePartial, "2023-12-01", &[], 1, 115_000, 0, Some("TT63-GPLX-ONLINE")),
        ("1.002804", OnlineFull, "2023-11-30", &[], 1, 135_000, 0, None),
        ("1.002804", OnlineFull, "2025-12-31", &[], 1, 115_000, 0, Some("TT63-GPLX-ONLINE")),
        ("1.002804", OnlineFull, "2026-03-01", &[], 1, 135_000, 0, None),
        ("1.002804", Counter, "2024-03-01", &[], 1, 135_000, 0, None),
        ("1.002809", OnlineFull, "2025-01-10", &[], 1, 115_000, 0, Some("TT63-GPLX-ONLINE")),
        // TT 63/2023: passport online 90% from 2024-01-01.
        ("2.002163", OnlineFull, "2024-01-01", &[], 1, 180_000, 0, Some("TT63-HO-CHIEU-ONLINE")),
        ("2.002163", OnlineFull, "2023-12-31", &[], 1, 200_000, 0, None),
        ("2.002163", Counter, "2024-06-01", &[], 1, 200_000, 0, None),
        // TT 244/2016: judicial record 200,000; 100,000 for students and merit; 0 for the exempt.
        ("2.001417", OnlineFull, "2024-05-05", &[], 1, 200_000, 0, None),
        ("2.001417", Counter, "2024-05-05", &[Subject::Student], 1, 100_000, 0, Some("TT244-LLTP-GIAM")),
        ("2.001417", Counter, "2024-05-05", &[Subject::MartyrRelative], 1, 100_000, 0, Some("TT244-LLTP-GIAM")),
        ("2.001417", Counter, "2024-05-05", &[Subject::Child], 1, 0, 0, Some("TT244-LLTP-MIEN")),
        (
            "2.001417",
            Counter,
            "2024-05-05",
            &[Subject::Student, Subject::PoorHousehold],
            1,
            0,
            0,
            Some("TT244-LLTP-MIEN"),
        ),
        // TT 75/2022: residence online cheaper; the exempt pay nothing.
        ("1.004222", OnlineFull, "2024-02-02", &[], 1, 10_000, 0, Some("TT75-THUONG-TRU-ONLINE")),
        ("1.004222", Counter, "2024-02-02", &[], 1, 20_000, 0, None),
        ("1.004222", Counter, "2024-02-02", &[Subject::Elderly], 1, 0, 0, Some("TT75-CU-TRU-MIEN")),
        ("1.004194", OnlinePartial, "2024-02-02", &[], 1, 7_000, 0, Some("TT75-TAM-TRU-ONLINE")),
        ("1.010031", OnlineFull, "2024-02-02", &[], 4, 20_000, 0, Some("TT75-TAM-TRU-DS-ONLINE")),
        ("1.010031", Counter, "2024-02-02", &[], 4, 40_000, 0, None),
        // Luật Hộ tịch Art. 11: marriage in Vietnam free; poor households pay no civil-status charge.
        ("1.000894", Counter, "2024-02-02", &[], 1, 0, 0, Some("LHT-11-1B-KET-HON")),
        ("2.000806", Counter, "2024-02-02", &[], 1, 1_000_000, 0, None),
        ("2.000806", Counter, "2024-02-02", &[Subject::PoorHousehold], 1, 0, 0, Some("LHT-11-1A")),
        // Vĩnh Phúc: 50% online (toàn trình) for provincial charges to 2025-06-30, then 0.
        ("2.000635", OnlineFull, "2024-07-15", &[], 3, 12_000, 0, Some("VP-ONLINE-50")),
        ("2.000635", OnlinePartial, "2024-07-15", &[], 3, 24_000, 0, None),
        ("2.000635", OnlineFull, "2025-06-30", &[], 1, 4_000, 0, Some("VP-ONLINE-50")),
        ("2.000635", OnlineFull, "2025-07-01", &[], 1, 0, 0, Some("VP-ONLINE-0")),
        ("2.000635", Counter, "2025-07-01", &[], 1, 8_000, 0, None),
        // Phí are not touched by VP-ONLINE-50 (kinds = le_phi); VP-ONLINE-0 takes both kinds.
        ("1.009972", OnlineFull, "2024-07-15", &[], 1, 75_000 + 500_000, 0, Some("VP-ONLINE-50")),
        ("1.009972", OnlineFull, "2025-08-01", &[], 1, 0, 0, Some("VP-ONLINE-0")),
    ];
    for (p, ch, on, subj, qty, citizen, budget, rule) in table {
        let (c, b, rules) = quote(&vp, p, *ch, on, subj, *qty);
        assert_eq!((c, b), (*citizen, *budget), "{p} {ch} {on} {subj:?}");
        assert_eq!(rules[0].as_deref(), *rule, "{p} {ch} {on} {subj:?}");
    }
    // A late birth registration pays the provincial charge, reduced online like any other.
    assert_eq!(
        quote_late(&vp, "1.001193", OnlineFull, "2024-07-15", &[]),
        (4_000, 0, vec![Some("VP-ONLINE-50".into())])
    );
    assert_eq!(quote_late(&vp, "1.001193", OnlinePartial, "2024-07-15", &[]), (8_000, 0, vec![None]));
    assert_eq!(quote_late(&vp, "1.001193", OnlineFull, "2025-07-01", &[]), (0, 0, vec![Some("VP-ONLINE-0".into())]));
    assert_eq!(quote_late(&vp, "1.001193", Counter, "2025-07-01", &[]), (8_000, 0, vec![None]));
}

#[test]
fn ha_noi_from_2026_waives_city_charges_and_pays_ministry_fees_online_but_not_appraisal_fees() {
    let hn = engine("ha-noi");
    // City charge online: 0 (NQ 77 a). At the counter: the base.
    assert_eq!(quote(&hn, "2.000575", OnlineFull, "2026-01-01", &[], 1).0, 0);
    assert_eq!(quote(&hn, "2.000575", Counter, "2026-01-01", &[], 1).0, 100_000);
    // Phase 1 (to 2025-12-31) waived city charges too.
    assert_eq!(quote(&hn, "2.000575", OnlinePartial, "2025-05-05", &[], 1).2[0].as_deref(), Some("HN-2023-HDND-0"));
    // Land certificate: the charge waived, the appraisal fee paid (excluded).
    let (c, b, rules) = quote(&hn, "1.003003", OnlineFull, "2026-02-01", &[], 1);
    assert_eq!((c, b), (500_000, 0));
    assert_eq!(rules, vec![Some("HN-NQ77-HDND-0".to_owned()), None]);
    // Ministry fee online: the city budget owes it (NQ 77 b). In 2026 the TT 63 online rate has
    // ended (31/12/2025), so what the citizen would owe is the base, and the city pays that.
    assert_eq!(quote(&hn, "1.002804", OnlineFull, "2026-03-01", &[], 1), (0, 135_000, vec![None]));
    assert_eq!(quote(&hn, "2.002163", OnlineFull, "2026-03-01", &[], 1).1, 200_000);
    // An exempt subject owes nothing to anyone: waive (0, 0) beats support (0, base).
    assert_eq!(
        quote(&hn, "2.001417", OnlineFull, "2026-03-01", &[Subject::Child], 1),
        (0, 0, vec![Some("TT244-LLTP-MIEN".into())])
    );
    // In 2025 the national TT 63 rate still applied to the driving licence.
    assert_eq!(quote(&hn, "1.002804", OnlineFull, "2025-03-01", &[], 1).0, 115_000);
}

#[test]
fn thanh_hoa_waives_every_provincial_fee_online_from_2025_06_24() {
    let th = engine("thanh-hoa");
    assert_eq!(quote(&th, "2.000575", OnlineFull, "2025-06-23", &[], 1).0, 100_000);
    assert_eq!(quote(&th, "2.000575", OnlineFull, "2025-06-24", &[], 1), (0, 0, vec![Some("TH-NQ12-0".into())]));
    assert_eq!(quote(&th, "1.003003", OnlinePartial, "2025-09-01", &[], 1).0, 0);
    assert_eq!(quote(&th, "1.003003", Counter, "2025-09-01", &[], 1).0, 600_000);
    // Ministry fees are not the HĐND's to waive.
    assert_eq!(quote(&th, "2.002163", OnlineFull, "2025-09-01", &[], 1).0, 180_000);
}

#[test]
fn quoting_the_same_facts_twice_gives_identical_bytes() {
    let vp = engine("vinh-phuc");
    let p = ProcedureCode::parse("1.009972").unwrap();
    let unit = UnitCode::parse(VP_UNIT).unwrap();
    let facts = Facts {
        case_code: Some("000.00.12.H62-240715-0001"),
        ..facts_at(&p, OnlineFull, "2024-07-15", &[], &[], Some(&unit), 1)
    };
    let a = vp.quote(&facts).unwrap().to_json();
    let b = engine("vinh-phuc").quote(&facts).unwrap().to_json();
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 8);
    assert!(a.starts_with(r#"{"case_code":"000.00.12.H62-240715-0001","procedure_code":"1.009972","as_of":"2024-07-15","policy":{"id":"vinh-phuc","hash":"sha256:"#), "{a}");
    assert!(a.contains(r#"{"fee":"phi_tham_dinh_gpxd","kind":"phi","base":500000,"quantity":1,"applied":null,"support":null,"citizen_due":500000,"budget_due":0,"rounded":false}"#), "{a}");
    assert!(a.contains(r#""applied":{"rule":"VP-ONLINE-50","basis":"Nghị quyết xx/2023/NQ-HĐND tỉnh Vĩnh Phúc (placeholder: mẫu 50% lệ phí khi nộp trực tuyến)","basis_status":"placeholder","effect":"pay_percent 50"},"support":null"#), "{a}");
    assert!(a.ends_with(r#""citizen_due":575000,"budget_due":0,"currency":"VND"}"#), "{a}");
}

// ------------------------------------------------------------------ policy checks

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

pub(super) fn catalogue() -> Catalogue {
    Catalogue::load(&fixture("catalogue.toml")).unwrap()
}

const HEAD: &str = "[policy]\nid = \"t\"\nname = \"Test\"\n";

fn rule(id: &str, extra: &str) -> String {
    format!(
        "\n[[rule]]\nid = \"{id}\"\nbasis = \"NQ test\"\nbasis_status = \"verified\"\neffective_from = \"2024-01-01\"\n{extra}\neffect = {{ pay_percent = 50 }}\n"
    )
}

fn check(text: &str) -> Result<Policy, LoadError> {
    let d = Dir::new();
    let p = d.write("p.toml", text);
    Policy::load(&p, &catalogue())
}

#[test]
fn every_bad_policy_is_refused_with_file_line_and_reason() {
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("{HEAD}{}", rule("A", "colour = \"red\"")), 10, "unknown field `colour`"),
        (format!("{HEAD}{}", rule("A", "").replace("2024-01-01", "2024-02-30")), 9, "not a real date"),
        (format!("{HEAD}{}", rule("A", "effective_to = \"2023-12-31\"")), 10, "before effective_from"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = 150")), 11, "outside 0..=100"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = -1")), 11, "outside 0..=100"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = 12.5")), 11, "TOML float"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = \"abc\"")), 11, "not a decimal"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "fixed = 1, waive = true")), 11, "exactly one"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "waive = false")), 11, "waive must be true"),
        (
            format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "fixed = 5, payer = \"provincial_budget\"")),
            11,
            "payer goes only",
        ),
        (format!("{HEAD}{}", rule("A", "fees = [\"le_phi_khong_co\"]")), 10, "unknown fee id"),
        (format!("{HEAD}{}", rule("A", "excludes = [\"phi_khong_co\"]")), 10, "unknown fee id"),
        (format!("{HEAD}{}", rule("A", "procedures = [\"9.999999\"]")), 10, "unknown procedure"),
        (format!("{HEAD}{}", rule("A", "categories = [\"thue\"]")), 10, "unknown category"),
        (format!("{HEAD}{}", rule("A", "channels = [\"web\"]")), 10, "unknown channel"),
        (format!("{HEAD}{}", rule("A", "subjects = []")), 10, "must not be empty"),
        (format!("{HEAD}{}", rule("A", "kinds = [\"thue\"]")), 10, "unknown variant"),
        (format!("{HEAD}{}", rule("A", "").replace("\"verified\"", "\"sure\"")), 8, "unknown variant `sure`"),
        (
            format!("{HEAD}{}", rule("A", "").replace("basis_status = \"verified\"\n", "")),
            5,
            "missing field `basis_status`",
        ),
        (format!("{HEAD}{}", rule("A", "units = [\"H62\"]")), 10, "units: receiving unit"),
        (format!("{HEAD}{}", rule("A", "units = [\"h62*\"]")), 10, "units: unit prefix"),
        (format!("{HEAD}{}", rule("A", "units = []")), 10, "must not be empty"),
        (format!("{HEAD}{}{}", rule("A", ""), rule("A", "channels = [\"counter\"]")), 14, "already used"),
        (
            format!(
                "{HEAD}{}{}",
                rule("A", "fees = [\"le_phi_ket_hon\"]"),
                rule("B", "fees = [\"le_phi_ket_hon\"]\neffective_to = \"2024-06-30\"")
                    .replace("pay_percent = 50", "waive = true")
            ),
            14,
            "same scope as rule A",
        ),
        (
            HEAD.replace("id = \"t\"\n", "id = \"t\"\nrounding = { mode = \"sideways\", unit = 1 }\n"),
            3,
            "rounding mode",
        ),
        (HEAD.replace("id = \"t\"\n", "id = \"t\"\nrounding = { mode = \"up\", unit = 10 }\n"), 3, "rounding unit"),
        ("[policy]\nid = \"t\"\nname = \"x\"\n[[rule]]\nid = \"A\"\n".into(), 4, "missing field"),
    ];
    for (text, line, reason) in cases {
        let e = check(&text).unwrap_err();
        assert_eq!(e.file.file_name().unwrap(), "p.toml", "{e}");
        assert!(e.message.contains(reason), "expected {reason:?}: {e}\n{text}");
        assert_eq!(e.line, line, "{reason}: {e}\n{text}");
    }
}

#[test]
fn same_scope_rules_may_agree_or_follow_each_other() {
    // Same effect on overlapping dates: allowed. Different effects on disjoint dates: allowed.
    let same =
        format!("{HEAD}{}{}", rule("A", "fees = [\"le_phi_ket_hon\"]"), rule("B", "fees = [\"le_phi_ket_hon\"]"));
    assert!(check(&same).is_ok());
    let later = format!(
        "{HEAD}{}{}",
        rule("A", "fees = [\"le_phi_ket_hon\"]\neffective_to = \"2024-06-30\""),
        rule("B", "fees = [\"le_phi_ket_hon\"]")
            .replace("2024-01-01", "2024-07-01")
            .replace("pay_percent = 50", "waive = true")
    );
    assert!(check(&later).is_ok());
    // A support rule pays on top of a reduction of the same scope: not a conflict. Two support
    // rules of one scope with different shares are.
    let support = |id: &str, p: u32| {
        rule(id, "fees = [\"le_phi_ket_hon\"]")
            .replace("pay_percent = 50", &format!("pay_percent = {p}, payer = \"provincial_budget\""))
    };
    let reduction_and_support = format!("{HEAD}{}{}", rule("A", "fees = [\"le_phi_ket_hon\"]"), support("S", 0));
    assert!(check(&reduction_and_support).is_ok());
    let e = check(&format!("{HEAD}{}{}", support("S", 0), support("T", 20))).unwrap_err();
    assert!(e.message.contains("same scope as rule S"), "{e}");
    // A different subject list is a different scope.
    let subjects = format!(
        "{HEAD}{}{}",
        rule("A", "subjects = [\"child\"]"),
        rule("B", "subjects = [\"elderly\"]").replace("pay_percent = 50", "waive = true")
    );
    assert!(check(&subjects).is_ok());
}

#[test]
fn includes_resolve_in_order_and_cycles_are_refused() {
    let d = Dir::new();
    d.write("base.toml", &format!("[policy]\nid = \"base\"\nname = \"b\"\n{}", rule("BASE", "")));
    d.write(
        "mid.toml",
        &format!(
            "[policy]\nid = \"mid\"\nname = \"m\"\ninclude = [\"base.toml\"]\n{}",
            rule("MID", "channels = [\"post\"]")
        ),
    );
    let top =
        d.write("top.toml", &format!("{HEAD}include = [\"mid.toml\"]\n{}", rule("TOP", "channels = [\"counter\"]")));
    let p = Policy::load(&top, &catalogue()).unwrap();
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["BASE", "MID", "TOP"]);
    assert_eq!(p.files.len(), 3);
    // The hash covers included files: changing the base changes it.
    d.write("base.toml", &format!("[policy]\nid = \"base\"\nname = \"b\"\n{}", rule("BASE", "").replace("50", "40")));
    assert_ne!(Policy::load(&top, &catalogue()).unwrap().hash, p.hash);
    // A cycle: base includes top.
    d.write(
        "base.toml",
        &format!("[policy]\nid = \"base\"\nname = \"b\"\ninclude = [\"top.toml\"]\n{}", rule("BASE", "")),
    );
    let e = Policy::load(&top, &catalogue()).unwrap_err();
    assert!(e.message.contains("cycle"), "{e}");
    assert_eq!((e.file.file_name().unwrap().to_str().unwrap(), e.line), ("base.toml", 4), "{e}");
    // Duplicate ids across files.
    d.write("base.toml", &format!("[policy]\nid = \"base\"\nname = \"b\"\n{}", rule("TOP", "channels = [\"post\"]")));
    let e = Policy::load(&top, &catalogue()).unwrap_err();
    assert!(e.message.contains("already used at") && e.message.contains("base.toml"), "{e}");
    // A missing include.
    let e = check(&format!("{HEAD}include = [\"nowhere.toml\"]\n")).unwrap_err();
    assert!(e.message.contains("nowhere.toml"), "{e}");
}

// ------------------------------------------------------------------ properties

fn arb_effect() -> impl Strategy<Value = Effect> {
    prop_oneof![
        (0u32..=1000, any::<bool>()).prop_map(|(tenths, b)| Effect::PayPercent {
            percent: Decimal::new(i64::from(tenths), 1),
            budget_pays_rest: b
        }),
        (0i64..2_000_000).prop_map(|f| Effect::Fixed(Money::new(f).unwrap())),
        Just(Effect::Waive),
    ]
}

fn arb_rule(i: usize) -> impl Strategy<Value = Rule> {
    (
        arb_effect(),
        0i64..3000,
        proptest::option::of(0i64..3000),
        proptest::option::of(0u8..16),
        proptest::option::of(1u16..4096),
    )
        .prop_map(move |(effect, from, len, channels, subjects)| {
            let base = date("2018-01-01");
            let effective_from = base + chrono::TimeDelta::days(from);
            let effective_to = len.map(|l| effective_from + chrono::TimeDelta::days(l));
            let channels: Option<BTreeSet<Channel>> = channels
                .map(|m| Channel::ALL.iter().enumerate().filter(|(b, _)| m & (1 << b) != 0).map(|(_, c)| *c).collect())
                .filter(|s: &BTreeSet<Channel>| !s.is_empty());
            let subjects: Option<BTreeSet<Subject>> = subjects
                .map(|m| Subject::ALL.iter().enumerate().filter(|(b, _)| m & (1 << b) != 0).map(|(_, s)| *s).collect())
                .filter(|s: &BTreeSet<Subject>| !s.is_empty());
            Rule {
                id: format!("R{i}"),
                basis: "test".into(),
                basis_status: BasisStatus::Verified,
                effective_from,
                effective_to,
                authority: None,
                categories: None,
                procedures: None,
                fees: None,
                excludes: BTreeSet::new(),
                kinds: None,
                channel_mask: channels.as_ref().map(|s| s.iter().fold(0, |m, c| m | policy::channel_bit(*c))),
                subject_mask: subjects.as_ref().map(|s| s.iter().fold(0, |m, c| m | policy::subject_bit(*c))),
                channels,
                subjects,
                units: None,
                effect,
                file: PathBuf::from("gen.toml"),
                line: 1,
            }
        })
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    let rules = (0usize..8).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>());
    let rounding = (
        prop_oneof![Just(RoundingMode::HalfUp), Just(RoundingMode::Down), Just(RoundingMode::Up)],
        prop_oneof![Just(1i64), Just(100), Just(1000)],
    );
    (rules, rounding).prop_map(|(rules, (mode, unit))| Policy {
        id: "gen".into(),
        name: "generated".into(),
        rounding: Rounding { mode, unit },
        rules,
        hash: "sha256:gen".into(),
        files: vec![],
    })
}

fn arb_facts() -> impl Strategy<Value = (usize, usize, u16, u32, i64)> {
    (0usize..28, 0usize..4, 0u16..4096, 1u32..20, 0i64..4000)
}

fn subjects_of(mask: u16) -> Vec<Subject> {
    Subject::ALL.iter().enumerate().filter(|(b, _)| mask & (1 << b) != 0).map(|(_, s)| *s).collect()
}

/// The quote, or a check that its error is right: `NoBase` only when no window of the named item
/// covers the date.
fn quote_or_no_base<'a>(e: &'a FeeEngine, facts: &Facts<'a>) -> Result<Option<Quote<'a>>, TestCaseError> {
    match e.quote(facts) {
        Ok(q) => Ok(Some(q)),
        Err(QuoteError::NoBase { procedure, fee, date }) => {
            let p = e.catalogue.procedures.iter().find(|p| p.code == procedure).unwrap();
            prop_assert!(p.fees.iter().filter(|f| f.id == fee).all(|f| !f.in_force(date)));
            Ok(None)
        }
        Err(other) => Err(TestCaseError::fail(other.to_string())),
    }
}

proptest! {
    #[test]
    fn quotes_respect_their_invariants(policy in arb_policy(), (pi, ci, smask, qty, day) in arb_facts(), late in any::<bool>()) {
        let cat = catalogue();
        let e = FeeEngine::new(cat, policy);
        let proc_ = &e.catalogue.procedures[pi % e.catalogue.procedures.len()];
        let code = ProcedureCode::parse(&proc_.code).unwrap();
        let subjects = subjects_of(smask);
        let case_facts: &[Fact] = if late { &[Fact::LateRegistration] } else { &[] };
        let channel = Channel::ALL[ci];
        let as_of = date("2018-01-01") + chrono::TimeDelta::days(day);
        let facts = Facts { case_code: None, procedure_code: &code, channel, subjects: &subjects, case_facts, receiving_unit: None, quantity: qty, as_of };
        let Some(q) = quote_or_no_base(&e, &facts)? else { return Ok(()) };
        // The items owed are listed, in catalogue order: those whose facts the case has and that
        // count at least one unit.
        let owed: Vec<&FeeItem> = proc_.items().into_iter()
            .map(|(_, entries)| &proc_.fees[entries[0]])
            .filter(|f| f.applies(case_facts) && f.units(qty) > 0)
            .collect();
        prop_assert_eq!(q.items.len(), owed.len());
        let mut citizen = 0i64;
        let mut budget = 0i64;
        for (item, fee) in q.items.iter().zip(owed) {
            prop_assert_eq!(&item.fee.id, &fee.id);
            prop_assert!(item.fee.in_force(as_of));
            let units = fee.units(qty);
            let gross = item.fee.amount.dong() * i64::from(units);
            // Never more than the gross.
            prop_assert!(item.citizen_due.dong() + item.budget_due.dong() <= gross);
            let matching = |r: &&Rule| r.in_force(as_of)
                && r.channels.as_ref().is_none_or(|s| s.contains(&channel))
                && r.subjects.as_ref().is_none_or(|s| s.iter().any(|x| subjects.contains(x)));
            // Step 4: the winner is the lowest (citizen, budget) among the non-support candidates,
            // first on ties; without one, the gross.
            let winner = e.policy.rules.iter().enumerate()
                .filter(|(_, r)| matching(r) && !r.is_support())
                .map(|(i, r)| {
                    let (c, b, _) = quote::tests_support::candidate(&r.effect, Money::new(gross).unwrap(), units, e.policy.rounding);
                    (c, b, i)
                })
                .min();
            let c = winner.map_or(gross, |w| w.0);
            match winner {
                Some((_, _, i)) => prop_assert_eq!(&item.applied.unwrap().rule.id, &e.policy.rules[i].id),
                None => prop_assert!(item.applied.is_none()),
            }
            if item.applied.is_some_and(|a| a.rule.effect == Effect::Waive) {
                prop_assert_eq!((item.citizen_due.dong(), item.budget_due.dong()), (0, 0));
            }
            // Step 5: support splits what the citizen would owe, never more.
            let support = if c > 0 {
                e.policy.rules.iter().enumerate()
                    .filter(|(_, r)| matching(r) && r.is_support())
                    .map(|(i, r)| {
                        let (sc, sb, _) = quote::tests_support::candidate(&r.effect, Money::new(c).unwrap(), units, e.policy.rounding);
                        prop_assert_eq!(sc + sb, c);
                        Ok((sc, i, sb))
                    })
                    .collect::<Result<Vec<_>, TestCaseError>>()?
                    .into_iter()
                    .min()
            } else {
                None
            };
            match support {
                Some((sc, i, sb)) => {
                    prop_assert_eq!((item.citizen_due.dong(), item.budget_due.dong()), (sc, sb));
                    prop_assert_eq!(&item.support.unwrap().rule.id, &e.policy.rules[i].id);
                }
                None => {
                    prop_assert_eq!((item.citizen_due.dong(), item.budget_due.dong()), (c, 0));
                    prop_assert!(item.support.is_none());
                }
            }
            citizen += item.citizen_due.dong();
            budget += item.budget_due.dong();
        }
        // Items add up to the totals.
        prop_assert_eq!((citizen, budget), (q.citizen_due.dong(), q.budget_due.dong()));
    }

    #[test]
    fn a_date_outside_every_rule_window_gives_the_gross(policy in arb_policy(), (pi, ci, smask, qty, _day) in arb_facts()) {
        let e = FeeEngine::new(catalogue(), policy);
        let proc_ = &e.catalogue.procedures[pi % e.catalogue.procedures.len()];
        let code = ProcedureCode::parse(&proc_.code).unwrap();
        let subjects = subjects_of(smask);
        // Every generated rule starts on or after 2018-01-01.
        let facts = Facts { case_code: None, procedure_code: &code, channel: Channel::ALL[ci], subjects: &subjects, case_facts: &[Fact::LateRegistration], receiving_unit: None, quantity: qty, as_of: date("2017-12-31") };
        let Some(q) = quote_or_no_base(&e, &facts)? else { return Ok(()) };
        for item in &q.items {
            prop_assert!(item.applied.is_none() && item.support.is_none());
            prop_assert_eq!(item.citizen_due.dong(), item.fee.amount.dong() * i64::from(item.fee.units(qty)));
        }
    }

    #[test]
    fn fixture_quotes_never_exceed_the_gross(pol in 0usize..4, (pi, ci, smask, qty, day) in arb_facts(), late in any::<bool>()) {
        let e = engine(["vinh-phuc", "ha-noi", "thanh-hoa", "phu-tho"][pol]);
        let proc_ = &e.catalogue.procedures[pi % e.catalogue.procedures.len()];
        let code = ProcedureCode::parse(&proc_.code).unwrap();
        let subjects = subjects_of(smask);
        let case_facts: &[Fact] = if late { &[Fact::LateRegistration] } else { &[] };
        let unit = UnitCode::parse(VP_UNIT).unwrap();
        let as_of = date("2015-01-01") + chrono::TimeDelta::days(day);
        let facts = Facts { case_code: None, procedure_code: &code, channel: Channel::ALL[ci], subjects: &subjects, case_facts, receiving_unit: Some(&unit), quantity: qty, as_of };
        let Some(q) = quote_or_no_base(&e, &facts)? else { return Ok(()) };
        let gross: i64 = q.items.iter().map(|i| i.fee.amount.dong() * i64::from(i.quantity)).sum();
        prop_assert!(q.citizen_due.dong() + q.budget_due.dong() <= gross);
    }
}
