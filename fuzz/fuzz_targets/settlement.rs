//! The settlement reader: every built-in profile (canonical, VNPAY, MoMo, ZaloPay, DVCQG, the
//! first byte picks one) on arbitrary bytes. Never panics; what it accepts is whole: amounts and
//! fees are non-negative đồng and lines are numbered in order.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use feerecon::settlement::{Profile, parse};
use libfuzzer_sys::fuzz_target;

fn profiles() -> &'static Vec<Profile> {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        let dir = Path::new(feerecon::embedded::PROFILES);
        let mut v = vec![Profile::canonical()];
        for name in feerecon::embedded::list_dir(dir).unwrap_or_default() {
            let text = feerecon::embedded::get(&dir.join(name)).unwrap_or_default();
            v.push(Profile::parse(text).unwrap_or_else(|e| panic!("{name}: {e}")));
        }
        v
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let ps = profiles();
    let p = &ps[usize::from(pick) % ps.len()];
    if let Ok(lines) = parse(p, bytes, &|_| {}) {
        let mut last = 0;
        for l in &lines {
            assert!(l.amount >= 0 && l.fee >= 0, "{l:?}");
            assert!(l.line_no > last, "line numbers go forward: {l:?}");
            last = l.line_no;
        }
    }
});
