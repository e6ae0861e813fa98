//! The fee engine through the API and the command line.

use feerecon::domain::Role;

use crate::both_backends;
use crate::cli::feerecon;
use crate::helpers::{case_body, error_code, json};

both_backends! {
    async fn a_stored_case_is_quoted_under_the_policy_of_its_receipt_date(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let code = "000.00.12.H62-240715-0001";
        let mut body = case_body(code);
        body["subjects"] = serde_json::json!([]);
        // A late birth registration owes the charge (Luật Hộ tịch Art. 11(1)(b) frees on-time ones).
        body["facts"] = serde_json::json!(["late_registration"]);
        app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await;
        let auditor = app.token_for(Role::Auditor).await;
        let res = app.get(&format!("/api/v1/cases/{code}/fee"), &auditor).await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["case_code"], code);
        assert_eq!(v["as_of"], "2024-07-15");
        assert_eq!(v["citizen_due"], 4000);
        assert_eq!(v["items"][0]["applied"]["rule"], "VP-ONLINE-50");
        assert_eq!(v["items"][0]["applied"]["basis_status"], "placeholder");
        assert!(v["items"][0]["support"].is_null(), "{v}");
        assert_eq!(v["policy"]["hash"], app.fees_hash());
        // The CLI quotes the same stored case to the same bytes.
        let r = feerecon(&app.database_url, &["quote", "--case", code, "--format", "json"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout.trim_end(), text);
        // A poor household pays no civil-status charge (Luật Hộ tịch Art. 11).
        body["subjects"] = serde_json::json!(["poor_household"]);
        app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await;
        let (_, v) = json(app.get(&format!("/api/v1/cases/{code}/fee"), &auditor).await).await;
        assert_eq!((v["citizen_due"].as_i64(), v["items"][0]["applied"]["rule"].as_str()), (Some(0), Some("LHT-11-1A")));
        // On time (no fact), the same birth owes nothing: no item applies.
        body["subjects"] = serde_json::json!([]);
        body["facts"] = serde_json::json!([]);
        app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await;
        let (_, v) = json(app.get(&format!("/api/v1/cases/{code}/fee"), &auditor).await).await;
        assert_eq!((v["citizen_due"].as_i64(), v["items"].as_array().map(Vec::len)), (Some(0), Some(0)), "{v}");
        // Unknown case: 404.
        let (status, v) = json(app.get("/api/v1/cases/000.00.12.H62-240715-0099/fee", &auditor).await).await;
        assert_eq!((status, error_code(&v)), (404, "not_found"));
    }
}

both_backends! {
    async fn case_facts_are_validated_like_subjects_and_kept_with_each_version(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let code = "000.00.12.H62-240715-0002";
        let mut body = case_body(code);
        body["facts"] = serde_json::json!(["late_registration", "late_registration"]);
        let (status, v) = json(app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await).await;
        assert_eq!((status, &v["facts"]), (201, &serde_json::json!(["late_registration"])), "{v}");
        // The facts are part of the content: dropping them is a new version, not "unchanged".
        body["facts"] = serde_json::json!([]);
        let (status, v) = json(app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await).await;
        assert_eq!((status, v["version"].as_i64(), &v["facts"]), (200, Some(2), &serde_json::json!([])), "{v}");
        let versions = app.store.case_versions(&feerecon::domain::CaseCode::parse(code).unwrap()).await.unwrap();
        assert_eq!(versions[0].case.facts, vec![feerecon::domain::Fact::LateRegistration]);
        // An unknown fact is refused, naming the field, and changes nothing.
        body["facts"] = serde_json::json!(["late"]);
        let (status, v) = json(app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await).await;
        assert_eq!((status, error_code(&v)), (422, "invalid_field"));
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("facts") && msg.contains("unknown fact \"late\""), "{v}");
        let auditor = app.token_for(Role::Auditor).await;
        let (_, v) = json(app.get(&format!("/api/v1/cases/{code}"), &auditor).await).await;
        assert_eq!(v["version"].as_i64(), Some(2));
    }
}

both_backends! {
    async fn a_stored_case_whose_procedure_left_the_catalogue_is_422_unknown_procedure(app: TestApp) {
        // A case stored while its procedure was in the catalogue (written here straight to the
        // store, as an older catalogue would have accepted it).
        let code = "000.00.12.H62-240715-0003";
        let mut body = case_body(code);
        body["procedure_code"] = serde_json::json!("9.999999");
        let input: feerecon::domain::CaseInput = serde_json::from_value(body).unwrap();
        let case = input.validate(None).unwrap();
        app.store.upsert_case(&case, "portal", chrono::Utc::now()).await.unwrap();
        let auditor = app.token_for(Role::Auditor).await;
        // Was 500 internal from both routes.
        let (status, v) = json(app.get(&format!("/api/v1/cases/{code}/fee"), &auditor).await).await;
        assert_eq!((status, error_code(&v)), (422, "unknown_procedure"), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("9.999999"), "{v}");
        let portal = app.token_for(Role::Portal).await;
        let (status, v) = app.create_payment(&portal, code, "vnpay", "k-unknown-procedure").await;
        assert_eq!((status, error_code(&v)), (422, "unknown_procedure"), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("9.999999"), "{v}");
        let (_, v) = json(app.get(&format!("/api/v1/cases/{code}/payments"), &auditor).await).await;
        assert_eq!(v["items"].as_array().map(Vec::len), Some(0), "nothing is created: {v}");
    }
}

both_backends! {
    async fn a_case_for_a_procedure_outside_the_catalogue_is_refused(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let code = "000.00.12.H62-240715-0001";
        let mut body = case_body(code);
        body["procedure_code"] = serde_json::json!("9.999999");
        let (status, v) = json(app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await).await;
        assert_eq!((status, error_code(&v)), (422, "invalid_field"));
        assert!(v["error"]["message"].as_str().unwrap().contains("procedure_code"), "{v}");
    }
}

#[tokio::test]
async fn quoting_given_facts_needs_no_database_and_gives_the_same_bytes_twice() {
    // A database URL that cannot be opened: quoting facts must not touch it.
    let url = "sqlite:///nonexistent-dir/x.db";
    let args = [
        "quote",
        "--procedure",
        "1.002804",
        "--channel",
        "online_full",
        "--received",
        "2024-03-01",
        "--format",
        "json",
    ];
    let a = feerecon(url, &args, "", &[]).await;
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = feerecon(url, &args, "", &[]).await;
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
    assert_eq!((v["citizen_due"].as_i64(), v["case_code"].is_null()), (Some(115_000), true));
    let r = feerecon(
        url,
        &[
            "quote",
            "--procedure",
            "1.002804",
            "--channel",
            "online_full",
            "--received",
            "2026-03-01",
            "--format",
            "json",
        ],
        "",
        &[],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["citizen_due"], 135_000);
    // Text output, per-unit quantity and subjects.
    let r = feerecon(
        url,
        &[
            "quote",
            "--procedure",
            "2.001417",
            "--channel",
            "counter",
            "--received",
            "2024-03-01",
            "--subject",
            "student",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("TT244-LLTP-GIAM") && r.stdout.contains("citizen 100.000 đ"), "{}", r.stdout);
    // Bad facts are user errors naming the flag.
    let r =
        feerecon(url, &["quote", "--procedure", "1.002804", "--channel", "web", "--received", "2024-03-01"], "", &[])
            .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--channel"), "{}", r.stderr);
    let r = feerecon(
        url,
        &["quote", "--procedure", "9.999999", "--channel", "counter", "--received", "2024-03-01"],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not in the fee catalogue"), "{}", r.stderr);
}

#[tokio::test]
async fn policy_check_and_start_up_refuse_a_bad_policy_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policies");
    std::fs::copy(format!("{fixtures}/national.toml"), dir.path().join("national.toml")).unwrap();
    let good = std::fs::read_to_string(format!("{fixtures}/vinh-phuc.toml")).unwrap();
    let bad = good.replace("effect = { pay_percent = 50 }", "effect = { pay_percent = 150 }");
    let line = bad.lines().position(|l| l.contains("pay_percent = 150")).unwrap() + 1;
    std::fs::write(dir.path().join("vp.toml"), &bad).unwrap();
    let file = dir.path().join("vp.toml").display().to_string();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());

    let r = feerecon(&url, &["policy", "check", &file], "", &[]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("vp.toml:{line}:")) && r.stderr.contains("outside 0..=100"), "{}", r.stderr);

    let r =
        feerecon(&url, &["serve"], "", &[("FEERECON_POLICY", file.as_str()), ("FEERECON_LISTEN", "127.0.0.1:0")]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("vp.toml:{line}:")), "{}", r.stderr);
    assert!(!dir.path().join("x.db").exists(), "nothing is created before the policy is accepted");

    let r = feerecon(&url, &["policy", "check", &format!("{fixtures}/ha-noi.toml")], "", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("ok: policy ha-noi") && r.stdout.contains("sha256:"), "{}", r.stdout);
    // A rule whose basis is not verified is warned about, one line each, and the check passes.
    assert!(r.stderr.contains("warning: ") && r.stderr.contains("ha-noi.toml:"), "{}", r.stderr);
    assert!(r.stderr.contains("rule HN-2023-HDND-0: basis_status placeholder"), "{}", r.stderr);
    assert!(r.stderr.contains("rule HN-NQ77-MOF-HO-TRO: basis_status inferred"), "{}", r.stderr);
    // A verified rule is not warned about.
    assert!(!r.stderr.contains("LHT-11-1A"), "{}", r.stderr);
}

#[tokio::test]
async fn policy_check_coverage_lists_the_gaps_and_the_merged_province_loads() {
    let url = "sqlite:///nonexistent-dir/x.db";
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policies");
    // Phú Thọ includes national.toml directly and through vinh-phuc.toml: one file, counted once
    // (this failed with "rule id ... is already used").
    let r = feerecon(
        url,
        &["policy", "check", &format!("{fixtures}/phu-tho.toml"), "--coverage", "2023-01-01", "2023-12-31"],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("ok: policy phu-tho") && r.stdout.contains("from 3 file(s)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("  1.002804 le_phi_doi_gplx: 2023-01-01..2023-07-31: no base rate in force (quotes fail)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("  1.009974 le_phi_gpxd_nha_o: 2023-01-01..2023-12-31: no rule touches it"),
        "{}",
        r.stdout
    );
    let r = feerecon(
        url,
        &["policy", "check", &format!("{fixtures}/phu-tho.toml"), "--coverage", "2023-12-31", "2023-01-01"],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--coverage"), "{}", r.stderr);
}

#[tokio::test]
async fn quoting_given_facts_takes_case_facts_and_the_receiving_unit() {
    let url = "sqlite:///nonexistent-dir/x.db";
    let q = |extra: &'static [&'static str]| {
        let mut args = vec![
            "quote",
            "--procedure",
            "1.001193",
            "--channel",
            "online_full",
            "--received",
            "2024-07-15",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        async move { feerecon(url, &args, "", &[]).await }
    };
    // On time: nothing owed. Late at a Vĩnh Phúc unit: VP's 50% (placeholder). Late without a
    // unit: rules scoped to units do not apply.
    let v: serde_json::Value = serde_json::from_str(&q(&[]).await.stdout).unwrap();
    assert_eq!(v["citizen_due"], 0);
    let v: serde_json::Value =
        serde_json::from_str(&q(&["--fact", "late_registration", "--unit", "000.00.12.H62"]).await.stdout).unwrap();
    assert_eq!(
        (v["citizen_due"].as_i64(), v["items"][0]["applied"]["rule"].as_str()),
        (Some(4_000), Some("VP-ONLINE-50"))
    );
    let v: serde_json::Value = serde_json::from_str(&q(&["--fact", "late_registration"]).await.stdout).unwrap();
    assert_eq!(v["citizen_due"], 8_000);
    let r = q(&["--fact", "late"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--fact") && r.stderr.contains("unknown fact"), "{}", r.stderr);
    let r = q(&["--unit", "H62"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--unit"), "{}", r.stderr);
    // A date no base rate covers is a user error naming the fee and the date.
    let r = feerecon(
        url,
        &["quote", "--procedure", "1.002804", "--channel", "counter", "--received", "2023-07-31"],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no base rate of fee le_phi_doi_gplx is in force on 2023-07-31"), "{}", r.stderr);
}

/// Every case code in `text` (`UUU.UU.UU.XNN-YYMMDD-NNNN`).
fn case_codes(text: &str) -> std::collections::BTreeSet<String> {
    text.as_bytes()
        .windows(25)
        .filter_map(|w| std::str::from_utf8(w).ok())
        .filter(|s| feerecon::domain::CaseCode::parse(s).is_ok())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_case_fixture_reuses_a_readme_example_code() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = case_codes(&std::fs::read_to_string(format!("{root}/README.md")).unwrap());
    assert!(readme.contains("000.00.12.H62-240715-0001"), "the README's examples: {readme:?}");
    for f in ["cases-2024-07.json", "cases-2025-07.csv"] {
        let fixture = case_codes(&std::fs::read_to_string(format!("{root}/fixtures/cases/{f}")).unwrap());
        assert!(fixture.len() > 80, "{f}: {} codes", fixture.len());
        let shared: Vec<&String> = readme.intersection(&fixture).collect();
        assert!(shared.is_empty(), "{f} reuses the README's example case codes {shared:?}");
    }
}

#[tokio::test]
async fn the_case_fixtures_import() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let r = feerecon(&url, &["migrate"], "", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["cases-2024-07.json", "cases-2025-07.csv"] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cases/").to_owned() + f;
        let r = feerecon(&url, &["import", "cases", &path], "", &[]).await;
        assert_eq!(r.code, 0, "{f}: {}", r.stderr);
    }
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    assert_eq!(store.case_count().await.unwrap(), 242);
}
