//! Bad settlement files through the API (issue 21, SPEC §7.1): a wrong encoding, a control
//! character, formula-looking text where an amount belongs, a cut-off line, a line longer than
//! any real one: each is refused with a clear error naming where, and nothing of it is kept, so
//! the good file imports afterwards. A BOM and CRLF line ends are not errors.

use feerecon::domain::Role;
use feerecon::settlement::{Line, LineStatus, Profile, write};

use crate::both_backends;
use crate::recon::{stored_files, upload_as};

fn lines() -> Vec<Line> {
    (1..=3)
        .map(|i| Line {
            line_no: i + 1,
            gateway_txn_no: format!("7700{i}"),
            txn_ref: format!("240715R{i}"),
            amount: 135_000,
            fee: 1_100,
            txn_time: chrono::DateTime::parse_from_rfc3339("2024-07-15T09:00:00+07:00").unwrap().to_utc(),
            status: LineStatus::Success,
        })
        .collect()
}

both_backends! {
    async fn bad_settlement_files_are_refused_clearly_and_leave_nothing(app: TestApp) {
        let finance = app.token_for(Role::Finance).await;
        let good = write(&Profile::canonical(), &lines());
        let text = String::from_utf8(good.clone()).unwrap();
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let mut invalid_utf8 = good.clone();
        let at = text.find("240715R2").unwrap();
        invalid_utf8[at] = 0xFF;
        let mut cut = text.trim_end().to_owned();
        cut.truncate(cut.rfind(',').unwrap());
        let bad: Vec<(&str, Vec<u8>, &str)> = vec![
            ("UTF-16 for a UTF-8 profile", utf16, "encoding"),
            ("invalid UTF-8", invalid_utf8, "encoding"),
            ("a formula where the amount belongs", text.replacen("135000", "=1+1", 1).into_bytes(), "line 2"),
            ("a leading + on the amount", text.replacen("135000", "+135000", 1).into_bytes(), "line 2"),
            ("a leading @ on the amount", text.replacen("135000", "@SUM(A1)", 1).into_bytes(), "line 2"),
            ("a cut-off last line", cut.into_bytes(), "line 4"),
            ("a NUL in the amount", text.replacen("135000", "135\u{0}000", 1).into_bytes(), "line 2"),
        ];
        for (what, bytes, names) in bad {
            let (status, v) = upload_as(&app, &finance, "vnpay", "canonical", bytes).await;
            assert!((400..500).contains(&status), "{what}: {status} {v}");
            let m = v["error"]["message"].as_str().unwrap_or_default();
            assert!(m.to_lowercase().contains(names), "{what}: the error names {names:?}: {v}");
            assert_eq!(stored_files(&app, &finance).await, 0, "{what}: nothing kept");
        }
        // A 2 MiB line: refused (as a broken line, or over the body limit), nothing kept.
        let huge = format!("{text}{}", "9".repeat(2 << 20)).into_bytes();
        let (status, v) = upload_as(&app, &finance, "vnpay", "canonical", huge).await;
        assert!(status == 413 || (status == 422 && v["error"]["message"].as_str().unwrap().contains("line 5")), "{status} {v}");
        assert_eq!(stored_files(&app, &finance).await, 0);
        // A BOM and CRLF line ends are read as the same file.
        let crlf = format!("\u{FEFF}{}", text.replace("\r\n", "\n").replace('\n', "\r\n")).into_bytes();
        let (status, v) = upload_as(&app, &finance, "vnpay", "canonical", crlf).await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["lines"].as_u64().or(v["line_count"].as_u64()), Some(3), "{v}");
        assert_eq!(stored_files(&app, &finance).await, 1);
    }
}
