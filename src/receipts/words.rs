//! Amounts in Vietnamese words, as a receipt must show them beside the figures (NĐ 254/2026
//! Art. 23(2)(đ), "số tiền bằng số và bằng chữ").
//!
//! The reading is the one Vietnamese documents use: groups of three digits with `nghìn`,
//! `triệu`, `tỷ` (and `nghìn tỷ`, `triệu tỷ`, `tỷ tỷ` above, by reading the part above a tỷ as a
//! number of its own); inside a group `trăm`, `mươi`/`mười` and the units, where a zero ten reads
//! `linh` (`một trăm linh năm`), a unit 1 after a ten above 1 reads `mốt` (`hai mươi mốt`), a unit
//! 5 after a ten reads `lăm` (`mười lăm`, `hai mươi lăm`), a unit 4 after a ten above 1 reads `tư`
//! (`ba mươi tư`). A group after a higher non-zero part is read whole (`không trăm linh bốn`),
//! a group of three zeros is not read at all. Pure; money is never a float.

const DIGITS: [&str; 10] = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"];

const BILLION: u64 = 1_000_000_000;

/// The words of a three-digit group (1..=999); `whole` reads the hundreds and a zero ten even
/// when they are zero (the group follows a higher non-zero part).
fn group(n: u64, whole: bool, out: &mut Vec<&'static str>) {
    let (h, t, u) = ((n / 100) as usize, ((n / 10) % 10) as usize, (n % 10) as usize);
    if h > 0 || whole {
        out.extend([DIGITS[h], "trăm"]);
    }
    match t {
        0 => {
            if u > 0 {
                if h > 0 || whole {
                    out.push("linh");
                }
                out.push(DIGITS[u]);
            }
        }
        1 => {
            out.push("mười");
            match u {
                0 => {}
                5 => out.push("lăm"),
                _ => out.push(DIGITS[u]),
            }
        }
        _ => {
            out.extend([DIGITS[t], "mươi"]);
            match u {
                0 => {}
                1 => out.push("mốt"),
                4 => out.push("tư"),
                5 => out.push("lăm"),
                _ => out.push(DIGITS[u]),
            }
        }
    }
}

/// The words of `n` below a tỷ (1..BILLION); `whole` as for `group`, for the first group read.
fn below_billion(n: u64, whole: bool, out: &mut Vec<&'static str>) {
    let mut read = whole;
    for (value, scale) in [(n / 1_000_000, Some("triệu")), ((n / 1_000) % 1_000, Some("nghìn")), (n % 1_000, None)] {
        if value == 0 {
            continue;
        }
        group(value, read, out);
        out.extend(scale);
        read = true;
    }
}

/// The words of `n` ≥ 1.
fn number(n: u64, whole: bool, out: &mut Vec<&'static str>) {
    if n >= BILLION {
        number(n / BILLION, whole, out);
        out.push("tỷ");
        let rest = n % BILLION;
        if rest > 0 {
            below_billion(rest, true, out);
        }
    } else {
        below_billion(n, whole, out);
    }
}

/// The words of a number of đồng, lower case, without the currency: `một trăm linh năm nghìn`.
pub fn number_words(n: u64) -> String {
    if n == 0 {
        return DIGITS[0].to_owned();
    }
    let mut out = Vec::new();
    number(n, false, &mut out);
    out.join(" ")
}

/// An amount in words as a receipt writes it: capitalised, ending in `đồng`
/// (`Một trăm linh năm nghìn đồng`).
pub fn amount_in_words(dong: u64) -> String {
    capitalise(&format!("{} đồng", number_words(dong)))
}

/// A signed difference in words, for an adjustment: `Điều chỉnh giảm năm nghìn đồng` or
/// `Điều chỉnh tăng ...` [I: the wording of an adjustment's total is not prescribed].
pub fn difference_in_words(dong: i64) -> String {
    let words = format!("{} đồng", number_words(dong.unsigned_abs()));
    match dong {
        d if d < 0 => format!("Điều chỉnh giảm {words}"),
        d if d > 0 => format!("Điều chỉnh tăng {words}"),
        _ => "Không điều chỉnh số tiền".to_owned(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `1.234.567`: digits grouped by three with dots, as Vietnamese documents write figures; a
/// negative difference keeps its sign.
pub fn figures(dong: i64) -> String {
    let digits = dong.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if dong < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_examples_read_exactly() {
        let cases: &[(u64, &str)] = &[
            (0, "Không đồng"),
            (15_000, "Mười lăm nghìn đồng"),
            (21_000, "Hai mươi mốt nghìn đồng"),
            (105_000, "Một trăm linh năm nghìn đồng"),
            (1_004_000, "Một triệu không trăm linh bốn nghìn đồng"),
            (1_234_000, "Một triệu hai trăm ba mươi tư nghìn đồng"),
            (2_500_025, "Hai triệu năm trăm nghìn không trăm hai mươi lăm đồng"),
            (1_000_000_000, "Một tỷ đồng"),
        ];
        for (n, words) in cases {
            assert_eq!(amount_in_words(*n), *words, "{n}");
        }
    }

    #[test]
    fn more_amounts_read_as_documents_write_them() {
        let cases: &[(u64, &str)] = &[
            (1, "Một đồng"),
            (5, "Năm đồng"),
            (10, "Mười đồng"),
            (11, "Mười một đồng"),
            (14, "Mười bốn đồng"),
            (20, "Hai mươi đồng"),
            (24, "Hai mươi tư đồng"),
            (25, "Hai mươi lăm đồng"),
            (31, "Ba mươi mốt đồng"),
            (100, "Một trăm đồng"),
            (101, "Một trăm linh một đồng"),
            (104, "Một trăm linh bốn đồng"),
            (110, "Một trăm mười đồng"),
            (115, "Một trăm mười lăm đồng"),
            (1_000, "Một nghìn đồng"),
            (4_000, "Bốn nghìn đồng"),
            (8_000, "Tám nghìn đồng"),
            (10_000, "Mười nghìn đồng"),
            (50_000, "Năm mươi nghìn đồng"),
            (100_000, "Một trăm nghìn đồng"),
            (115_000, "Một trăm mười lăm nghìn đồng"),
            (135_000, "Một trăm ba mươi lăm nghìn đồng"),
            (200_000, "Hai trăm nghìn đồng"),
            (575_000, "Năm trăm bảy mươi lăm nghìn đồng"),
            (1_000_000, "Một triệu đồng"),
            (1_000_005, "Một triệu không trăm linh năm đồng"),
            (1_010_000, "Một triệu không trăm mười nghìn đồng"),
            (3_000_000, "Ba triệu đồng"),
            (12_345_678, "Mười hai triệu ba trăm bốn mươi lăm nghìn sáu trăm bảy mươi tám đồng"),
            (1_000_000_005, "Một tỷ không trăm linh năm đồng"),
            (1_005_000_000, "Một tỷ không trăm linh năm triệu đồng"),
            (2_000_500_000, "Hai tỷ năm trăm nghìn đồng"),
            (21_000_000_000, "Hai mươi mốt tỷ đồng"),
            (1_000_000_000_000, "Một nghìn tỷ đồng"),
            (1_001_000_000_000, "Một nghìn không trăm linh một tỷ đồng"),
            (
                9_223_372_036_854_775_807,
                "Chín tỷ hai trăm hai mươi ba triệu ba trăm bảy mươi hai nghìn không trăm ba mươi sáu tỷ \
                 tám trăm năm mươi tư triệu bảy trăm bảy mươi lăm nghìn tám trăm linh bảy đồng",
            ),
        ];
        for (n, words) in cases {
            assert_eq!(amount_in_words(*n), *words, "{n}");
        }
    }

    #[test]
    fn differences_and_figures() {
        assert_eq!(difference_in_words(-4_000), "Điều chỉnh giảm bốn nghìn đồng");
        assert_eq!(difference_in_words(21_000), "Điều chỉnh tăng hai mươi mốt nghìn đồng");
        assert_eq!(difference_in_words(0), "Không điều chỉnh số tiền");
        assert_eq!(figures(1_234_567), "1.234.567");
        assert_eq!(figures(-135_000), "-135.000");
        assert_eq!(figures(0), "0");
        assert_eq!(figures(999), "999");
    }

    proptest::proptest! {
        /// Every amount reads as words only (no digit left), ends in đồng, and a zero group is
        /// never read alone as "không trăm" at the start.
        #[test]
        fn every_amount_reads_as_words(n in 0u64..=u64::from(u32::MAX) * 1_000_000) {
            let w = amount_in_words(n);
            proptest::prop_assert!(w.ends_with(" đồng"));
            proptest::prop_assert!(!w.chars().any(|c| c.is_ascii_digit()));
            proptest::prop_assert!(n == 0 || !w.starts_with("Không"));
            proptest::prop_assert!(!w.contains("  "));
        }
    }
}
