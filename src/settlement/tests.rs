use std::path::Path;

use super::*;
use chrono::Utc;

fn profiles_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/settlement-profiles")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn sample() -> Vec<Line> {
    vec![
        Line {
            line_no: 2,
            gateway_txn_no: "14226112".into(),
            txn_ref: "240715ABC".into(),
            amount: 1_234_500,
            fee: 13_580,
            txn_time: t("2024-07-15T23:59:59+07:00"),
            status: LineStatus::Success,
        },
        Line {
            line_no: 3,
            gateway_txn_no: "14226113".into(),
            txn_ref: "240715ABD".into(),
            amount: 115_000,
            fee: 0,
            txn_time: t("2024-07-16T00:00:00+07:00"),
            status: LineStatus::Refund,
        },
    ]
}

fn parse_ok(p: &Profile, bytes: &[u8]) -> Vec<Line> {
    parse(p, bytes, &|_| {}).unwrap()
}

#[test]
fn every_fixture_profile_reads_what_it_writes() {
    for name in ["canonical", "vnpay", "momo", "zalopay"] {
        let p = Profile::resolve(&profiles_dir(), name).unwrap();
        let bytes = write(&p, &sample());
        let got = parse_ok(&p, &bytes);
        assert_eq!(got, sample(), "{name}");
        assert_eq!(got[0].business_date().to_string(), "2024-07-15", "23:59:59 belongs to the 15th");
        assert_eq!(got[1].business_date().to_string(), "2024-07-16", "00:00:00 to the 16th");
    }
}

#[test]
fn each_profile_has_its_gateway_s_shape() {
    let vnpay = write(&Profile::resolve(&profiles_dir(), "vnpay").unwrap(), &sample());
    assert!(vnpay.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
    let text = String::from_utf8_lossy(&vnpay);
    assert!(text.contains("123450000"), "×100 amounts: {text}");
    assert!(text.contains("15/07/2024 23:59:59"), "{text}");
    let momo = String::from_utf8(write(&Profile::resolve(&profiles_dir(), "momo").unwrap(), &sample())).unwrap();
    assert!(momo.contains("\"1,234,500\"") || momo.contains("1,234,500"), "thousands: {momo}");
    assert!(momo.starts_with("Mã giao dịch MoMo;"), "{momo}");
    let zalo = write(&Profile::resolve(&profiles_dir(), "zalopay").unwrap(), &sample());
    assert_eq!(&zalo[..2], &[0xFF, 0xFE], "UTF-16LE");
}

#[test]
fn the_canonical_profile_takes_local_times_and_rfc3339() {
    let p = Profile::canonical();
    let csv = "gateway_txn_no,txn_ref,amount,fee,txn_time,status\nA1,R1,115000,1265,2024-07-15 09:00:00,success\nA2,R2,5000,0,2024-07-15T02:00:00Z,refund\n";
    let lines = parse_ok(&p, csv.as_bytes());
    assert_eq!(lines[0].txn_time, t("2024-07-15T09:00:00+07:00"));
    assert_eq!(lines[1].txn_time, t("2024-07-15T09:00:00+07:00"));
    assert_eq!((lines[1].status, lines[1].line_no), (LineStatus::Refund, 3));
}

#[test]
fn a_refund_line_s_empty_fee_is_zero() {
    let csv = "gateway_txn_no,txn_ref,amount,fee,txn_time,status\nA2,R2,5000,,2024-07-15 09:00:00,refund\n";
    let lines = parse_ok(&Profile::canonical(), csv.as_bytes());
    assert_eq!((lines[0].status, lines[0].fee, lines[0].amount), (LineStatus::Refund, 0, 5000));
}

#[test]
fn a_header_only_file_is_a_day_without_transactions() {
    assert!(parse_ok(&Profile::canonical(), b"gateway_txn_no,txn_ref,amount,fee,txn_time,status\n").is_empty());
}

#[test]
fn bad_files_are_refused_with_line_field_and_reason() {
    let head = "gateway_txn_no,txn_ref,amount,fee,txn_time,status\n";
    let good = "A1,R1,115000,1265,2024-07-15 09:00:00,success\n";
    let p = Profile::canonical();
    let cases: Vec<(Vec<u8>, usize, Option<&str>, &str)> = vec![
        (
            "gateway_txn_no,txn_ref,amount,txn_time,status\nA1,R1,1,2024-07-15 09:00:00,success\n".into(),
            1,
            Some("fee"),
            "missing column",
        ),
        ("gateway_txn_no,txn_ref,amount,amount,fee,txn_time,status\n".into(), 1, Some("amount"), "appears twice"),
        (format!("{head}{good}A2,R2,-5000,0,2024-07-15 09:00:00,success\n").into(), 3, Some("amount"), "negative"),
        (format!("{head}{good}{good}A3,R3,5000,0\n").into(), 4, None, "truncated"),
        (format!("{head}A1,R1,115000,1265,15/07/2024,success\n").into(), 2, Some("txn_time"), "matches none"),
        (format!("{head}A1,R1,115000,1265,2024-07-15 09:00:00,chargeback\n").into(), 2, Some("status"), "neither"),
        (format!("{head}A1,,115000,1265,2024-07-15 09:00:00,success\n").into(), 2, Some("txn_ref"), "empty"),
        (format!("{head}A1,R1,11.5,0,2024-07-15 09:00:00,success\n").into(), 2, Some("amount"), "not a whole amount"),
        (
            format!("{head}{good}A2,R2,5000,,2024-07-15 09:00:00,success\n").into(),
            3,
            Some("fee"),
            "empty on a success line",
        ),
        (
            format!("{head}{good}A2,R2,5000, ,2024-07-15 09:00:00,success\n").into(),
            3,
            Some("fee"),
            "empty on a success line",
        ),
        ([head.as_bytes(), b"A1,R1,1\xff5,0,2024-07-15 09:00:00,success\n"].concat(), 2, None, "wrong encoding"),
    ];
    for (bytes, line, field, reason) in cases {
        let e = parse(&p, &bytes, &|_| {}).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (line, field), "{e}");
        assert!(e.to_string().contains(reason), "{e}");
    }
    // ×100 amounts must be whole đồng.
    let vnpay = Profile::resolve(&profiles_dir(), "vnpay").unwrap();
    let mut bytes = write(&vnpay, &sample());
    let text = String::from_utf8(bytes.clone()).unwrap().replace("123450000", "123450050");
    bytes = text.into_bytes();
    let e = parse(&vnpay, &bytes, &|_| {}).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("amount")));
    assert!(e.reason.contains("divisible"), "{e}");
    // A UTF-16 file read with a UTF-8 profile, and the reverse.
    let zalo = write(&Profile::resolve(&profiles_dir(), "zalopay").unwrap(), &sample());
    assert!(parse(&Profile::canonical(), &zalo, &|_| {}).unwrap_err().reason.contains("wrong encoding"));
    let e = parse(&Profile::resolve(&profiles_dir(), "zalopay").unwrap(), b"abc", &|_| {}).unwrap_err();
    assert!(e.reason.contains("wrong encoding"), "{e}");
    // A BOM the profile requires.
    let e = parse(&vnpay, &write(&Profile::canonical(), &sample()), &|_| {}).unwrap_err();
    assert!(e.reason.contains("byte-order mark"), "{e}");
}

#[test]
fn profiles_are_checked() {
    assert!(
        Profile::parse(
            "[profile]\nname='x'\ngateway='momo'\nencoding='latin1'\ntime_formats=[]\nsuccess_words=[]\nrefund_words=[]\n[columns]\n"
        )
        .unwrap_err()
        .contains("encoding")
    );
    assert!(Profile::resolve(&profiles_dir(), "nope").unwrap_err().contains("nope.toml"));
}

/// A profile from its TOML, for the amount-format tests: `[profile]` lines after the common ones.
fn profile(extra: &str) -> Profile {
    Profile::parse(&format!(
        "[profile]\nname='t'\ngateway='zalopay'\nencoding='utf-8'\ntime_formats=['%Y-%m-%d %H:%M:%S']\nsuccess_words=['ok']\nrefund_words=['back']\n{extra}\n[columns]\ngateway_txn_no='no'\ntxn_ref='ref'\namount='amount'\nfee='fee'\ntxn_time='time'\nstatus='status'\n"
    ))
    .unwrap()
}

/// Reads one amount through a whole file of the profile: `Ok(đồng)` or the refusal.
fn read_amount(p: &Profile, amount: &str) -> Result<i64, FileError> {
    let sep = char::from(p.delimiter);
    let file = format!(
        "no{sep}ref{sep}amount{sep}fee{sep}time{sep}status\nA1{sep}R1{sep}\"{amount}\"{sep}0{sep}2024-07-15 09:00:00{sep}ok\n"
    );
    parse(p, file.as_bytes(), &|_| {}).map(|l| l[0].amount)
}

#[test]
fn a_thousands_separator_is_accepted_only_between_groups_of_three_digits() {
    let dot = profile("thousands_separator='.'");
    for (text, dong) in [("115000", 115_000), ("115.000", 115_000), ("1.234.567", 1_234_567), ("0", 0), ("999", 999)] {
        assert_eq!(read_amount(&dot, text), Ok(dong), "{text}");
    }
    // The ZaloPay profile reads with "." as thousands: a decimal point is not a separator, and
    // 115000.00 is refused rather than read as 11,500,000.
    let zalopay = Profile::resolve(&profiles_dir(), "zalopay").unwrap();
    let tab = "zp_trans_id\tapp_trans_id\tSố tiền\tPhí\tNgày giao dịch\tTrạng thái\n";
    // A leading zero before a separator ("0.500", "012.345") is a decimal misread as thousands.
    for bad in ["115000.00", "1.15.000", "1150.00", ".115", "115.", "115..000", "1.2345", "11.5", "0.500", "012.345"] {
        let text = format!("{tab}1\t240715_R\t{bad}\t0\t15-07-2024 09:00:00\tThành công\n");
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let e = parse(&zalopay, &bytes, &|_| {}).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("amount")), "{bad}: {e}");
        assert!(e.reason.contains("groups of three digits") || e.reason.contains("not a whole amount"), "{bad}: {e}");
        let e = read_amount(&dot, bad).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("amount"), "{bad}: {e}");
    }
    let comma = profile("thousands_separator=','");
    assert_eq!(read_amount(&comma, "1,234,500"), Ok(1_234_500));
    for bad in ["1,2345", "12,34", "1234,500", ",500", "1,,500", "1,234,50"] {
        let e = read_amount(&comma, bad).unwrap_err();
        assert!(e.reason.contains("groups of three digits"), "{bad}: {e}");
    }
    // Without a thousands separator, none is accepted.
    let plain = profile("");
    assert!(read_amount(&plain, "1.234").unwrap_err().reason.contains("not a whole amount"));
}

#[test]
fn decimals_are_read_only_where_the_profile_names_its_decimal_separator_and_must_be_zero_after_scaling() {
    let vn = profile("thousands_separator='.'\ndecimal_separator=','");
    for (text, dong) in [("115.000,00", 115_000), ("115000,00", 115_000), ("115.000", 115_000), ("0,00", 0)] {
        assert_eq!(read_amount(&vn, text), Ok(dong), "{text}");
    }
    for (bad, why) in [
        ("115.000,50", "not zero"),
        ("115.000,01", "not zero"),
        // Two decimal places, as the profile says (default): 115,000 in the other convention is refused.
        ("115,000", "2 digits"),
        ("115.000,0", "2 digits"),
        ("115.000,", "2 digits"),
        ("115.000,00,00", "not a whole amount"),
        ("115.000,0a", "not a whole amount"),
        (",00", "not a whole amount"),
    ] {
        let e = read_amount(&vn, bad).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("amount"), "{bad}: {e}");
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
    // What the profile writes, it reads.
    assert_eq!(parse_ok(&vn, &write(&vn, &sample())), sample());
    // Decimals on a ×100 amount: whole đồng after dividing by the scale.
    let x100 = profile("amount_scale=100\ndecimal_separator='.'");
    assert_eq!(read_amount(&x100, "11500000.00"), Ok(115_000));
    assert_eq!(read_amount(&x100, "11500000"), Ok(115_000));
    assert!(read_amount(&x100, "11500050.00").unwrap_err().reason.contains("not zero"));
    assert!(read_amount(&x100, "11500000.50").unwrap_err().reason.contains("not zero"));
    // Three places named: 1.234,500 would be 1234.5 đồng.
    let three = profile("thousands_separator='.'\ndecimal_separator=','\ndecimal_places=3");
    assert_eq!(read_amount(&three, "1.234,000"), Ok(1234));
    assert!(read_amount(&three, "1.234,500").unwrap_err().reason.contains("not zero"));
    // What a profile file may say about its amounts.
    let base =
        "[profile]\nname='t'\ngateway='momo'\nencoding='utf-8'\ntime_formats=[]\nsuccess_words=[]\nrefund_words=[]\n";
    let cols = "[columns]\ngateway_txn_no='a'\ntxn_ref='b'\namount='c'\ntxn_time='d'\nstatus='e'\n";
    for (extra, why) in [
        ("thousands_separator='.'\ndecimal_separator='.'", "differ"),
        ("decimal_separator=',,'", "one character"),
        ("decimal_separator='5'", "digit"),
        ("thousands_separator='1'", "digit"),
        ("decimal_places=2", "decimal_separator"),
        ("decimal_separator=','\ndecimal_places=0", "decimal_places"),
    ] {
        let e = Profile::parse(&format!("{base}{extra}\n{cols}")).unwrap_err();
        assert!(e.contains(why), "{extra}: {e}");
    }
}

#[test]
fn every_fixture_profile_states_its_amount_format() {
    // What the fixtures assume ([I]: no gateway publishes its file format), checked so that a
    // change to a profile's number format is a deliberate one.
    let get = |n: &str| Profile::resolve(&profiles_dir(), n).unwrap();
    let (vnpay, momo, zalopay) = (get("vnpay"), get("momo"), get("zalopay"));
    assert_eq!((vnpay.thousands_separator, vnpay.decimal_separator, vnpay.amount_scale), (None, None, 100));
    assert_eq!((momo.thousands_separator, momo.decimal_separator, momo.amount_scale), (Some(','), None, 1));
    assert_eq!((zalopay.thousands_separator, zalopay.decimal_separator, zalopay.amount_scale), (Some('.'), None, 1));
    let canonical = Profile::canonical();
    assert_eq!((canonical.thousands_separator, canonical.decimal_separator, canonical.amount_scale), (None, None, 1));
    // Each names its gateway; canonical serves any.
    assert_eq!(
        [vnpay.gateway, momo.gateway, zalopay.gateway, canonical.gateway],
        [Some(Gateway::Vnpay), Some(Gateway::Momo), Some(Gateway::Zalopay), None]
    );
    // A profile names its gateway: one without is refused.
    let e = Profile::parse(
        "[profile]\nname='t'\nencoding='utf-8'\ntime_formats=[]\nsuccess_words=[]\nrefund_words=[]\n[columns]\ngateway_txn_no='a'\ntxn_ref='b'\namount='c'\ntxn_time='d'\nstatus='e'\n",
    )
    .unwrap_err();
    assert!(e.contains("gateway"), "{e}");
}

#[test]
fn the_canonical_header_is_exact() {
    let row = "A1,R1,115000,1265,2024-07-15 09:00:00,success\n";
    let p = Profile::canonical();
    for (header, line_row, field, why) in [
        // Another order.
        (
            "txn_ref,gateway_txn_no,amount,fee,txn_time,status",
            "R1,A1,115000,1265,2024-07-15 09:00:00,success\n",
            "gateway_txn_no",
            "column 1",
        ),
        ("gateway_txn_no,txn_ref,fee,amount,txn_time,status", row, "amount", "column 3"),
        // An extra column, at the end or inside.
        (
            "gateway_txn_no,txn_ref,amount,fee,txn_time,status,note",
            "A1,R1,115000,1265,2024-07-15 09:00:00,success,x\n",
            "note",
            "extra column",
        ),
        (
            "gateway_txn_no,txn_ref,amount,fee,note,txn_time,status",
            "A1,R1,115000,1265,x,2024-07-15 09:00:00,success\n",
            "txn_time",
            "column 5",
        ),
        // A name spelt otherwise.
        ("gateway_txn_no,txn_ref,Amount,fee,txn_time,status", row, "amount", "column 3"),
        ("gateway_txn_no, txn_ref,amount,fee,txn_time,status", row, "txn_ref", "column 2"),
        // One missing.
        (
            "gateway_txn_no,txn_ref,amount,fee,txn_time",
            "A1,R1,115000,1265,2024-07-15 09:00:00\n",
            "status",
            "missing column",
        ),
    ] {
        let e = parse(&p, format!("{header}\n{line_row}").as_bytes(), &|_| {}).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (1, Some(field)), "{header}: {e}");
        assert!(e.reason.contains(why), "{header}: {e}");
        assert!(e.reason.contains("gateway_txn_no,txn_ref,amount,fee,txn_time,status"), "names the header: {e}");
    }
    // The exact header, with or without a byte-order mark, is read.
    let good = format!("gateway_txn_no,txn_ref,amount,fee,txn_time,status\n{row}");
    assert_eq!(parse_ok(&p, good.as_bytes()).len(), 1);
    assert_eq!(parse_ok(&p, [b"\xEF\xBB\xBF".as_slice(), good.as_bytes()].concat().as_slice()).len(), 1);
    // A gateway's profile maps its columns by name: order and extra columns are its own affair.
    let momo = Profile::resolve(&profiles_dir(), "momo").unwrap();
    let text = "Ghi chú;Trạng thái;Mã đơn hàng;Mã giao dịch MoMo;Số tiền (VND);Phí dịch vụ (VND);Thời gian giao dịch\nx;Thành công;R1;A1;\"115,000\";0;2024-07-15 09:00:00\n";
    assert_eq!(parse_ok(&momo, text.as_bytes())[0].amount, 115_000);
}

#[test]
fn the_dvcqg_statement_reads_references_from_the_description() {
    let p = Profile::resolve(&profiles_dir(), "dvcqg").unwrap();
    assert_eq!(p.gateway, Some(Gateway::Dvcqg));
    let lines: Vec<Line> = sample().into_iter().map(|l| Line { fee: 0, ..l }).collect();
    let bytes = write(&p, &lines);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains("TT DVCQG MGD:"), "{text}");
    assert_eq!(parse_ok(&p, &bytes), lines, "{text}");
    // Other money on the account (no MTC: label) is left out; the lines after it keep their numbers.
    let header = text.lines().next().unwrap().trim_start_matches('\u{feff}').to_owned();
    let body: Vec<&str> = text.lines().skip(1).collect();
    let with_other = format!(
        "\u{feff}{header}\n\"Lãi tiền gửi tháng 7\",\"12.000\",15/07/2024 10:00:00,Ghi có\n{}\n",
        body.join("\n")
    );
    let got = parse_ok(&p, with_other.as_bytes());
    assert_eq!(got.len(), lines.len());
    assert_eq!(got[0].line_no, 3, "the skipped line still counts");
    // A line naming our reference but not the platform's number is refused, with its line.
    let broken =
        format!("\u{feff}{header}\n\"TT DVCQG MTC:DVC240715ABCDEFGHJKL\",\"150.000\",15/07/2024 10:00:00,Ghi có\n");
    let e = parse(&p, broken.as_bytes(), &|_| {}).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("gateway_txn_no")), "{e}");
    // A line naming the platform's number but not our reference is the platform's money too: it
    // is refused with its line, never skipped as other money (the day would miss it silently).
    let only_no = format!("\u{feff}{header}\n\"TT DVCQG MGD:9000001\",\"150.000\",15/07/2024 10:00:00,Ghi có\n");
    let e = parse(&p, only_no.as_bytes(), &|_| {}).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("txn_ref")), "{e}");
}

#[test]
fn only_labelled_fields_may_share_a_column() {
    let base = "[profile]\nname='t'\ngateway='dvcqg'\nencoding='utf-8'\ntime_formats=['%Y-%m-%d %H:%M:%S']\nsuccess_words=['ok']\nrefund_words=['back']\n[columns]\ngateway_txn_no='d'\ntxn_ref='d'\namount='a'\ntxn_time='t'\nstatus='s'\n";
    assert!(Profile::parse(base).unwrap_err().contains("share a column"));
    assert!(Profile::parse(&format!("{base}[extract]\ngateway_txn_no='G:'\ntxn_ref='R:'\n")).is_ok());
    assert!(Profile::parse(&format!("{base}[extract]\ngateway_txn_no='G:'\ntxn_ref=''\n")).is_err());
    let own = base.replace("txn_ref='d'", "txn_ref='r'");
    assert!(Profile::parse(&format!("{own}[extract]\nskip_unreferenced=true\n")).unwrap_err().contains("needs"));
}
