//! How fast the fee engine quotes: one typical procedure (two fee items, a province policy
//! including the national rules), facts given in memory. Goal (issue 3): ≥ 1,000,000 quotes/s on
//! one core. Run: `cargo bench --bench quote`.

use std::path::Path;

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use feerecon::domain::{Channel, Fact, ProcedureCode, Subject, UnitCode};
use feerecon::fees::{Facts, FeeEngine};

fn engine(policy: &str) -> FeeEngine {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    FeeEngine::load(&root.join("catalogue.toml"), &root.join(format!("policies/{policy}.toml")))
        .expect("the fixtures load")
}

fn bench(c: &mut Criterion) {
    let vp = engine("vinh-phuc");
    let hn = engine("ha-noi");
    let construction = ProcedureCode::parse("1.009972").expect("a valid code");
    let birth = ProcedureCode::parse("1.001193").expect("a valid code");
    let record = ProcedureCode::parse("2.001417").expect("a valid code");
    let on = NaiveDate::from_ymd_opt(2024, 7, 15).expect("a date");
    let unit = UnitCode::parse("000.00.12.H62").expect("a valid unit");
    let late = [Fact::LateRegistration];
    let mut g = c.benchmark_group("quote");
    g.throughput(Throughput::Elements(1));
    g.bench_function("construction permit, 2 items, vinh-phuc", |b| {
        let facts = Facts {
            case_code: None,
            procedure_code: &construction,
            channel: Channel::OnlineFull,
            subjects: &[],
            case_facts: &[],
            receiving_unit: Some(&unit),
            quantity: 1,
            as_of: on,
        };
        b.iter(|| std::hint::black_box(vp.quote(std::hint::black_box(&facts)).expect("quotes")).citizen_due)
    });
    g.bench_function("birth registration, 1 item, vinh-phuc", |b| {
        let facts = Facts {
            case_code: None,
            procedure_code: &birth,
            channel: Channel::OnlineFull,
            subjects: &[],
            case_facts: &late,
            receiving_unit: Some(&unit),
            quantity: 1,
            as_of: on,
        };
        b.iter(|| std::hint::black_box(vp.quote(std::hint::black_box(&facts)).expect("quotes")).citizen_due)
    });
    g.bench_function("judicial record, student, ha-noi 2026", |b| {
        let facts = Facts {
            case_code: None,
            procedure_code: &record,
            channel: Channel::OnlineFull,
            subjects: &[Subject::Student],
            case_facts: &[],
            receiving_unit: Some(&unit),
            quantity: 1,
            as_of: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date"),
        };
        b.iter(|| std::hint::black_box(hn.quote(std::hint::black_box(&facts)).expect("quotes")).citizen_due)
    });
    g.bench_function("quote + canonical JSON, construction permit", |b| {
        let facts = Facts {
            case_code: None,
            procedure_code: &construction,
            channel: Channel::OnlineFull,
            subjects: &[],
            case_facts: &[],
            receiving_unit: Some(&unit),
            quantity: 1,
            as_of: on,
        };
        b.iter(|| std::hint::black_box(vp.quote(&facts).expect("quotes").to_json()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
