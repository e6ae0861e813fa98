//! Fee engine tests against the fixtures and against generated policies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{Channel, Money, ProcedureCode, Subject};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

fn engine(policy: &str) -> FeeEngine {
    FeeEngine::load(&fixture("catalogue.toml"), &fixture(&format!("policies/{policy}.toml"))).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// (citizen, budget, the applied rule of each item) for some facts.
fn quote(
    e: &FeeEngine,
    proc_: &str,
    channel: Channel,
    on: &str,
    subjects: &[Subject],
    qty: u32,
) -> (i64, i64, Vec<Option<String>>) {
    let p = ProcedureCode::parse(proc_).unwrap();
    let facts = Facts { case_code: None, procedure_code: &p, channel, subjects, quantity: qty, as_of: date(on) };
    let q = e.quote(&facts).unwrap();
    (q.citizen_due.dong(), q.budget_due.dong(), q.items.iter().map(|i| i.applied.map(|a| a.rule.id.clone())).collect())
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
        ("2.001417", Counter, "2016-12-31", &[Subject::Child], 1, 200_000, 0, None),
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
        ("1.001193", OnlineFull, "2024-07-15", &[], 1, 4_000, 0, Some("VP-ONLINE-50")),
        ("1.001193", OnlinePartial, "2024-07-15", &[], 1, 8_000, 0, None),
        ("1.001193", OnlineFull, "2025-06-30", &[], 1, 4_000, 0, Some("VP-ONLINE-50")),
        ("1.001193", OnlineFull, "2025-07-01", &[], 1, 0, 0, Some("VP-ONLINE-0")),
        ("1.001193", Counter, "2025-07-01", &[], 1, 8_000, 0, None),
        ("2.000635", OnlineFull, "2024-07-15", &[], 3, 12_000, 0, Some("VP-ONLINE-50")),
        // Phí are not touched by VP-ONLINE-50 (kinds = le_phi); VP-ONLINE-0 takes both kinds.
        ("1.009972", OnlineFull, "2024-07-15", &[], 1, 75_000 + 500_000, 0, Some("VP-ONLINE-50")),
        ("1.009972", OnlineFull, "2025-08-01", &[], 1, 0, 0, Some("VP-ONLINE-0")),
    ];
    for (p, ch, on, subj, qty, citizen, budget, rule) in table {
        let (c, b, rules) = quote(&vp, p, *ch, on, subj, *qty);
        assert_eq!((c, b), (*citizen, *budget), "{p} {ch} {on} {subj:?}");
        assert_eq!(rules[0].as_deref(), *rule, "{p} {ch} {on} {subj:?}");
    }
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
    // Ministry fee online: the city budget owes it (NQ 77 b): citizen 0, budget the base.
    assert_eq!(
        quote(&hn, "1.002804", OnlineFull, "2026-03-01", &[], 1),
        (0, 135_000, vec![Some("HN-NQ77-MOF-HO-TRO".into())])
    );
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
    let facts = Facts {
        case_code: Some("000.00.12.H62-240715-0001"),
        procedure_code: &p,
        channel: OnlineFull,
        subjects: &[],
        quantity: 1,
        as_of: date("2024-07-15"),
    };
    let a = vp.quote(&facts).unwrap().to_json();
    let b = engine("vinh-phuc").quote(&facts).unwrap().to_json();
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 8);
    assert!(a.starts_with(r#"{"case_code":"000.00.12.H62-240715-0001","procedure_code":"1.009972","as_of":"2024-07-15","policy":{"id":"vinh-phuc","hash":"sha256:"#), "{a}");
    assert!(a.contains(r#"{"fee":"phi_tham_dinh_gpxd","kind":"phi","base":500000,"quantity":1,"applied":null,"citizen_due":500000,"budget_due":0,"rounded":false}"#), "{a}");
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

fn catalogue() -> Catalogue {
    Catalogue::load(&fixture("catalogue.toml")).unwrap()
}

const HEAD: &str = "[policy]\nid = \"t\"\nname = \"Test\"\n";

fn rule(id: &str, extra: &str) -> String {
    format!(
        "\n[[rule]]\nid = \"{id}\"\nbasis = \"NQ test\"\neffective_from = \"2024-01-01\"\n{extra}\neffect = {{ pay_percent = 50 }}\n"
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
        (format!("{HEAD}{}", rule("A", "colour = \"red\"")), 9, "unknown field `colour`"),
        (format!("{HEAD}{}", rule("A", "").replace("2024-01-01", "2024-02-30")), 8, "not a real date"),
        (format!("{HEAD}{}", rule("A", "effective_to = \"2023-12-31\"")), 9, "before effective_from"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = 150")), 10, "outside 0..=100"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = -1")), 10, "outside 0..=100"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = 12.5")), 10, "TOML float"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "pay_percent = \"abc\"")), 10, "not a decimal"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "fixed = 1, waive = true")), 10, "exactly one"),
        (format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "waive = false")), 10, "waive must be true"),
        (
            format!("{HEAD}{}", rule("A", "").replace("pay_percent = 50", "fixed = 5, payer = \"provincial_budget\"")),
            10,
            "payer goes only",
        ),
        (format!("{HEAD}{}", rule("A", "fees = [\"le_phi_khong_co\"]")), 9, "unknown fee id"),
        (format!("{HEAD}{}", rule("A", "excludes = [\"phi_khong_co\"]")), 9, "unknown fee id"),
        (format!("{HEAD}{}", rule("A", "procedures = [\"9.999999\"]")), 9, "unknown procedure"),
        (format!("{HEAD}{}", rule("A", "categories = [\"thue\"]")), 9, "unknown category"),
        (format!("{HEAD}{}", rule("A", "channels = [\"web\"]")), 9, "unknown channel"),
        (format!("{HEAD}{}", rule("A", "subjects = []")), 9, "must not be empty"),
        (format!("{HEAD}{}", rule("A", "kinds = [\"thue\"]")), 9, "unknown variant"),
        (format!("{HEAD}{}{}", rule("A", ""), rule("A", "channels = [\"counter\"]")), 13, "already used"),
        (
            format!(
                "{HEAD}{}{}",
                rule("A", "fees = [\"le_phi_ket_hon\"]"),
                rule("B", "fees = [\"le_phi_ket_hon\"]\neffective_to = \"2024-06-30\"")
                    .replace("pay_percent = 50", "waive = true")
            ),
            13,
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
        proptest::option::of(1u16..1024),
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
    (0usize..28, 0usize..4, 0u16..1024, 1u32..20, 0i64..4000)
}

proptest! {
    #[test]
    fn quotes_respect_their_invariants(policy in arb_policy(), (pi, ci, smask, qty, day) in arb_facts()) {
        let cat = catalogue();
        let e = FeeEngine::new(cat, policy);
        let proc_ = &e.catalogue.procedures[pi % e.catalogue.procedures.len()];
        let code = ProcedureCode::parse(&proc_.code).unwrap();
        let subjects: Vec<Subject> = Subject::ALL.iter().enumerate().filter(|(b, _)| smask & (1 << b) != 0).map(|(_, s)| *s).collect();
        let channel = Channel::ALL[ci];
        let as_of = date("2018-01-01") + chrono::TimeDelta::days(day);
        let facts = Facts { case_code: None, procedure_code: &code, channel, subjects: &subjects, quantity: qty, as_of };
        let q = e.quote(&facts).unwrap();
        // Every fee of the procedure is listed, in catalogue order.
        prop_assert_eq!(q.items.len(), proc_.fees.len());
        let mut citizen = 0i64;
        let mut budget = 0i64;
        for (item, fee) in q.items.iter().zip(&proc_.fees) {
            prop_assert_eq!(&item.fee.id, &fee.id);
            let gross = fee.amount.dong() * i64::from(if fee.per_unit { qty } else { 1 });
            // Never more than the gross.
            prop_assert!(item.citizen_due.dong() + item.budget_due.dong() <= gross);
            // A waived item is 0 and listed with its rule.
            if let Some(a) = item.applied {
                if a.rule.effect == Effect::Waive {
                    prop_assert_eq!((item.citizen_due.dong(), item.budget_due.dong()), (0, 0));
                }
                prop_assert!(a.rule.in_force(as_of));
            } else {
                prop_assert_eq!((item.citizen_due.dong(), item.budget_due.dong()), (gross, 0));
            }
            // The winner is the lowest (citizen, budget) among the candidates, first on ties.
            let candidates: Vec<(i64, i64, usize)> = e.policy.rules.iter().enumerate()
                .filter(|(_, r)| r.in_force(as_of)
                    && r.channels.as_ref().is_none_or(|s| s.contains(&channel))
                    && r.subjects.as_ref().is_none_or(|s| s.iter().any(|x| subjects.contains(x))))
                .map(|(i, r)| {
                    let (c, b, _) = quote::tests_support::candidate(&r.effect, Money::new(gross).unwrap(), if fee.per_unit { qty } else { 1 }, e.policy.rounding);
                    (c, b, i)
                })
                .collect();
            match candidates.iter().min() {
                Some((c, b, i)) => {
                    prop_assert_eq!((item.citizen_due.dong(), item.budget_due.dong()), (*c, *b));
                    prop_assert_eq!(&item.applied.unwrap().rule.id, &e.policy.rules[*i].id);
                }
                None => prop_assert!(item.applied.is_none()),
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
        let subjects: Vec<Subject> = Subject::ALL.iter().enumerate().filter(|(b, _)| smask & (1 << b) != 0).map(|(_, s)| *s).collect();
        // Every generated rule starts on or after 2018-01-01.
        let facts = Facts { case_code: None, procedure_code: &code, channel: Channel::ALL[ci], subjects: &subjects, quantity: qty, as_of: date("2017-12-31") };
        let q = e.quote(&facts).unwrap();
        for (item, fee) in q.items.iter().zip(&proc_.fees) {
            prop_assert!(item.applied.is_none());
            prop_assert_eq!(item.citizen_due.dong(), fee.amount.dong() * i64::from(if fee.per_unit { qty } else { 1 }));
        }
    }

    #[test]
    fn fixture_quotes_never_exceed_the_gross(pol in 0usize..3, (pi, ci, smask, qty, day) in arb_facts()) {
        let e = engine(["vinh-phuc", "ha-noi", "thanh-hoa"][pol]);
        let proc_ = &e.catalogue.procedures[pi % e.catalogue.procedures.len()];
        let code = ProcedureCode::parse(&proc_.code).unwrap();
        let subjects: Vec<Subject> = Subject::ALL.iter().enumerate().filter(|(b, _)| smask & (1 << b) != 0).map(|(_, s)| *s).collect();
        let as_of = date("2015-01-01") + chrono::TimeDelta::days(day);
        let facts = Facts { case_code: None, procedure_code: &code, channel: Channel::ALL[ci], subjects: &subjects, quantity: qty, as_of };
        let q = e.quote(&facts).unwrap();
        let gross: i64 = proc_.fees.iter().map(|f| f.amount.dong() * i64::from(if f.per_unit { qty } else { 1 })).sum();
        prop_assert!(q.citizen_due.dong() + q.budget_due.dong() <= gross);
    }
}
