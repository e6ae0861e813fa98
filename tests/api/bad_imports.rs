//! Bad case imports and policies through the CLI, and formula-looking text followed from an
//! accepted field to the downloads and the ledger export (issue 21, SPEC §5, §7, §8).
//!
//! - `import cases` on both databases: Latin-1, UTF-16, a control character, a NUL, a 1 MiB line
//!   and a file of many lines whose last record is bad are each refused with exit 1 and an
//!   error naming the file, the line and (for a field) the field; nothing is written. A BOM with
//!   CRLF line ends is accepted (SPEC: UTF-8 with or without a BOM), as are names that look like
//!   spreadsheet formulas, stored exactly; a file of many good lines imports.
//! - `policy check`: Latin-1, UTF-16, a control character and a 1 MiB line are refused naming the
//!   file and line; a BOM with CRLF line ends is read as the same policy (the same hash).
//! - A settlement line whose `txn_ref` and `gateway_txn_no` look like formulas: the report's CSV
//!   and XLSX downloads neutralise them; the close posts them into the ledger, whose export keeps
//!   them byte for byte and still verifies.
//!
//! `FEERECON_BAD_IMPORT_LINES` sets the many-lines file (default 5,000 records).

use feerecon::domain::CaseCode;
use feerecon::settlement::{Line, LineStatus};

use crate::both_databases;
use crate::cli::feerecon;
use crate::helpers::{Db, json};
use crate::world::{World, across};

const HEAD: &str = "case_code,procedure_code,applicant_name,channel,subjects,quantity,received_at,receiving_unit\n";

fn row(seq: usize, name: &str) -> String {
    let name = name.replace('"', "\"\"");
    format!(
        "000.00.12.H62-240715-{seq:04},1.001193,\"{name}\",online_full,,1,2024-07-15T08:00:00+07:00,000.00.12.H62\n"
    )
}

fn many_lines() -> usize {
    std::env::var("FEERECON_BAD_IMPORT_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000).clamp(10, 9_999)
}

const FORMULAS: [&str; 4] = ["=cmd|' /C calc'!A0", "+84 912 345 678", "-Nguyễn", "@SUM(A1)"];

both_databases! {
    async fn bad_case_files_are_refused_naming_file_line_and_field_and_write_nothing(url: String) {
        let dir = tempfile::tempdir().unwrap();
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let good = format!("{HEAD}{}{}", row(1, "Trần Thị Bình"), row(2, "Lê Văn Đức"));
        let latin1: Vec<u8> = good.chars().map(|c| if (c as u32) < 256 { c as u8 } else { b'?' }).collect();
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(good.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let n = many_lines();
        let mut many = String::from(HEAD);
        for seq in 1..n {
            many.push_str(&row(seq, &format!("Người {seq}")));
        }
        many.push_str(&row(n, "Bad\u{7}Bell"));
        let bad: Vec<(&str, Vec<u8>, String, Option<&str>)> = vec![
            ("Latin-1", latin1, "line 2".into(), None),
            ("UTF-16", utf16, "line 1".into(), None),
            ("an escape character in a name", format!("{HEAD}{}{}", row(1, "A"), row(2, "B\u{1b}[31mC")).into_bytes(), "line 3".into(), Some("applicant_name")),
            ("a NUL in a name", format!("{HEAD}{}", row(1, "A\u{0}B")).into_bytes(), "line 2".into(), Some("applicant_name")),
            ("a 1 MiB line", format!("{HEAD}{}", row(1, &"Đ".repeat(1 << 19))).into_bytes(), "line 2".into(), Some("applicant_name")),
            ("many lines, the last bad", many.clone().into_bytes(), format!("line {}", n + 1), Some("applicant_name")),
        ];
        for (what, bytes, line, field) in bad {
            let file = dir.path().join("cases.csv");
            std::fs::write(&file, &bytes).unwrap();
            let file = file.display().to_string();
            let r = feerecon(&url, &["import", "cases", &file], "", &[]).await;
            assert_eq!(r.code, 1, "{what}: {}", r.stderr);
            let error = r.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{what}: {}", r.stderr));
            assert!(error.contains(&file) && error.contains(&format!("{line}:")), "{what}: names the file and {line}: {error}");
            if let Some(f) = field {
                assert!(error.contains(f), "{what}: names {f}: {error}");
            } else {
                assert!(error.contains("UTF-8"), "{what}: names the encoding: {error}");
            }
            assert!(error.len() < 500, "{what}: one short line: {} bytes", error.len());
            for seq in [1, 2] {
                let code = CaseCode::parse(&format!("000.00.12.H62-240715-{seq:04}")).unwrap();
                assert!(store.get_case(&code).await.unwrap().is_none(), "{what}: nothing written");
            }
        }

        // A BOM and CRLF line ends; formula-looking names are text, stored exactly.
        let mut crlf = format!("\u{FEFF}{HEAD}");
        for (i, name) in FORMULAS.iter().enumerate() {
            crlf.push_str(&row(i + 1, name));
        }
        let file = dir.path().join("crlf.csv");
        std::fs::write(&file, crlf.replace('\n', "\r\n")).unwrap();
        let r = feerecon(&url, &["import", "cases", file.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        for (i, name) in FORMULAS.iter().enumerate() {
            let code = CaseCode::parse(&format!("000.00.12.H62-240715-{:04}", i + 1)).unwrap();
            assert_eq!(store.get_case(&code).await.unwrap().unwrap().case.applicant_name, *name);
        }
        // Many good lines import.
        let file = dir.path().join("many.csv");
        std::fs::write(&file, many.replace("Bad\u{7}Bell", "Người cuối")).unwrap();
        let r = feerecon(&url, &["import", "cases", file.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains(&format!("imported {n} cases")), "{}", r.stdout);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policy_files_are_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policies");
    // ha-noi.toml includes national.toml from its own folder.
    std::fs::copy(src.join("national.toml"), dir.path().join("national.toml")).unwrap();
    let text = std::fs::read_to_string(src.join("ha-noi.toml")).unwrap();
    let check = |name: &str, bytes: Vec<u8>| {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let file = file.display().to_string();
        async move { (feerecon("sqlite::memory:", &["policy", "check", &file], "", &[]).await, file) }
    };
    let (ok, _) = check("ha-noi.toml", text.clone().into_bytes()).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let hash = |out: &str| out.split("hash ").nth(1).map(str::trim).map(str::to_owned);
    let first_non_ascii = text.lines().position(|l| !l.is_ascii()).unwrap() + 1;
    let latin1: Vec<u8> = text.chars().map(|c| if (c as u32) < 256 { c as u8 } else { b'?' }).collect();
    let latin1_line = text.lines().position(|l| l.chars().any(|c| !c.is_ascii() && (c as u32) < 256)).unwrap() + 1;
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let lines = text.lines().count();
    let bad: Vec<(&str, Vec<u8>, usize)> = vec![
        ("Latin-1", latin1, latin1_line),
        ("UTF-16", utf16, 1),
        ("a control character", format!("{text}\nnote = \"a\u{1}b\"\n").into_bytes(), lines + 2),
        ("a 1 MiB line", format!("{text}\nnote = \"{}\"\n", "x".repeat(1 << 20)).into_bytes(), lines + 2),
    ];
    assert!(latin1_line >= first_non_ascii);
    for (what, bytes, line) in bad {
        let (r, file) = check("bad.toml", bytes).await;
        assert_eq!(r.code, 1, "{what}: {}", r.stderr);
        let error =
            r.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{what}: {}", r.stderr));
        assert!(error.contains(&format!("{file}:{line}:")), "{what}: names {file}:{line}: {error}");
        assert!(error.len() < 500, "{what}: one short line");
    }
    // A BOM and CRLF line ends: the same policy.
    let crlf = format!("\u{FEFF}{}", text.replace('\n', "\r\n"));
    let (r, _) = check("crlf.toml", crlf.into_bytes()).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(hash(&r.stdout), hash(&ok.stdout), "{}", r.stdout);
}

across! {
    async fn formula_text_in_a_settlement_line_is_neutralised_in_downloads_and_exact_in_the_ledger(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let p = w.pay("2024-07-15", false).await;
        // The gateway's line of our payment, and a line of its own whose fields look like formulas.
        let at = chrono::DateTime::parse_from_rfc3339("2024-07-15T10:05:00+07:00").unwrap().to_utc();
        let lines = vec![
            Line { line_no: 2, gateway_txn_no: p.no.clone(), txn_ref: p.txn_ref.clone(), amount: p.amount, fee: 1_485, txn_time: at, status: LineStatus::Success },
            Line { line_no: 3, gateway_txn_no: "@SUM(A1)".into(), txn_ref: FORMULAS[0].into(), amount: 50_000, fee: 0, txn_time: at, status: LineStatus::Success },
        ];
        w.import_lines(feerecon::domain::payment::Gateway::Vnpay, &lines).await;
        w.at("2024-07-16T01:00:00+07:00");
        let report = w.run("2024-07-15").await;
        let extra = report["items"].as_array().unwrap().iter().find(|i| i["txn_ref"] == FORMULAS[0]).unwrap_or_else(|| panic!("{report}"));
        let key = extra["key"].as_str().unwrap().to_owned();

        // The downloads neutralise: no cell starts with = or @.
        let csv = w.app.get("/api/v1/reconciliations/2024-07-15?gateway=vnpay&format=csv", &w.auditor).await.text().await.unwrap();
        assert!(csv.contains("'=cmd|' /C calc'!A0") && csv.contains("'@SUM(A1)"), "{csv}");
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(csv.as_bytes());
        for rec in reader.records() {
            for cell in rec.unwrap().iter() {
                assert!(!cell.starts_with(['=', '+', '-', '@']), "a cell read as a formula: {cell:?}");
            }
        }
        let xlsx = w.app.get("/api/v1/reconciliations/2024-07-15?gateway=vnpay&format=xlsx", &w.auditor).await.bytes().await.unwrap();
        let xml = xlsx_text(&xlsx);
        assert!(xml.contains("=cmd|") && !xml.contains(">=cmd") && !xml.contains(">@SUM"), "{xml}");

        // Closed, the line is posted with its text in the memo; the export keeps it byte for byte.
        w.resolve(&key, "write_off").await;
        let (s, v) = w.close("2024-07-15").await;
        assert_eq!(s, 200, "{v}");
        let zip = w.app.get("/api/v1/ledger/export?from=2024-07-15&to=2024-07-15", &w.auditor).await.bytes().await.unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
        let mut read = |name: &str| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut z.by_name(name).unwrap(), &mut out).unwrap();
            out
        };
        let (entries, manifest) = (read("entries.csv"), read("manifest.json"));
        let text = String::from_utf8(entries.clone()).unwrap();
        assert!(text.contains("settlement @SUM(A1) (=cmd|' /C calc'!A0)") && !text.contains("'=cmd"), "{text}");
        let stored: Vec<String> = w.app.store.ledger_entries(0, 1_000).await.unwrap().into_iter().map(|e| e.memo).collect();
        assert!(stored.iter().any(|m| m == "settlement @SUM(A1) (=cmd|' /C calc'!A0)"), "{stored:?}");
        assert!(feerecon::ledger::verify::verify(&entries, &manifest, None).is_ok());
        let (_, live) = json(w.app.get("/api/v1/ledger/verify", &w.auditor).await).await;
        assert_eq!(live["ok"], true, "{live}");
    }
}

/// The XML text of every part of an XLSX file.
fn xlsx_text(bytes: &[u8]) -> String {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = String::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        if f.name().is_ok_and(|n| n.ends_with(".xml")) {
            std::io::Read::read_to_string(&mut f, &mut out).unwrap();
        }
    }
    out
}
