//! The case-code parser (QCVN 102:2016): never panics, and what it accepts prints back as given
//! and parses again to the same code.
#![no_main]

use feerecon::domain::CaseCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = CaseCode::parse(s) {
        assert_eq!(c.as_str(), s);
        let again = CaseCode::parse(c.as_str()).unwrap_or_else(|e| panic!("{s:?} parsed once, not twice: {e}"));
        assert_eq!(again, c);
        let _ = (c.unit(), c.receipt_date(), c.sequence());
    }
});
