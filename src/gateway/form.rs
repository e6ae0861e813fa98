//! Form encoding (`application/x-www-form-urlencoded`) as VNPAY's samples write it, its
//! decoding, and the plain-ASCII descriptions gateways want.
//!
//! VNPAY signs form-encoded data, and its samples' encoders disagree on `* ~ ! ' ( )`
//! (reference/gateways.md §1.3): `FormEncoding` names each, so that what we send uses only the
//! characters they all write alike, and what we receive can be checked against each.

/// The form encoders VNPAY's samples and libraries use. They agree on letters, digits, `-`,
/// `.`, `_` and the space (`+`), and disagree on `* ~ ! ' ( )` (reference/gateways.md §1.3), so
/// a signature over data holding one of those depends on the sender's encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormEncoding {
    /// WHATWG `application/x-www-form-urlencoded` and Java's `URLEncoder` (VNPAY's Java sample,
    /// the `vnpay` npm library): `*` stays, `~ ! ' ( )` are escaped. What we send with.
    Standard,
    /// PHP's `urlencode` (VNPAY's PHP sample): `* ~ ! ' ( )` are all escaped.
    Php,
    /// Python's `urllib.parse.quote_plus` (3.7+): `~` stays, `* ! ' ( )` are escaped.
    Python,
    /// JavaScript's `encodeURIComponent` with `%20` made `+` (VNPAY's Node sample): `* ~ ! ' ( )`
    /// all stay.
    Js,
}

impl FormEncoding {
    pub const ALL: [FormEncoding; 4] =
        [FormEncoding::Standard, FormEncoding::Php, FormEncoding::Python, FormEncoding::Js];

    /// The characters the encoders disagree on.
    pub const DISPUTED: &'static [u8] = b"*~!'()";

    fn keeps(self, b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_')
            || match self {
                FormEncoding::Standard => b == b'*',
                FormEncoding::Php => false,
                FormEncoding::Python => b == b'~',
                FormEncoding::Js => FormEncoding::DISPUTED.contains(&b),
            }
    }

    /// Form-encodes `s`: kept bytes as they are, space as `+`, every other byte of the UTF-8
    /// encoding as `%XX` (upper-case hex).
    pub fn encode(self, s: &str) -> String {
        let mut out = String::with_capacity(s.len() * 3);
        for b in s.bytes() {
            if self.keeps(b) {
                out.push(b as char);
            } else if b == b' ' {
                out.push('+');
            } else {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
        out
    }
}

/// Form-encodes a string the way `application/x-www-form-urlencoded` serializers do (WHATWG URL
/// standard, Java's `URLEncoder`): `A–Z a–z 0–9 * - . _` stay, space becomes `+`, every other
/// byte of the UTF-8 encoding becomes `%XX` (upper-case hex).
pub fn form_encode(s: &str) -> String {
    FormEncoding::Standard.encode(s)
}

/// Decodes a form-encoded component: `+` is a space, `%XX` a byte. `None` on a malformed escape
/// or bytes that are not UTF-8.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = b.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Splits a raw query string into decoded pairs, in order. `None` when a component is malformed.
pub fn parse_query(q: &str) -> Option<Vec<(String, String)>> {
    if q.is_empty() {
        return Some(vec![]);
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

/// Strips Vietnamese diacritics and anything outside `[A-Za-z0-9 ._-]`, for order descriptions
/// that gateways want in plain ASCII: every form encoder writes those characters alike, so what
/// we sign is what any gateway recomputes.
pub fn ascii_order_info(s: &str) -> String {
    /// The base letter of a lower-case Vietnamese letter.
    fn base(c: char) -> Option<char> {
        Some(match c {
            'à' | 'á' | 'ạ' | 'ả' | 'ã' | 'â' | 'ầ' | 'ấ' | 'ậ' | 'ẩ' | 'ẫ' | 'ă' | 'ằ' | 'ắ' | 'ặ' | 'ẳ' | 'ẵ' => {
                'a'
            }
            'è' | 'é' | 'ẹ' | 'ẻ' | 'ẽ' | 'ê' | 'ề' | 'ế' | 'ệ' | 'ể' | 'ễ' => 'e',
            'ì' | 'í' | 'ị' | 'ỉ' | 'ĩ' => 'i',
            'ò' | 'ó' | 'ọ' | 'ỏ' | 'õ' | 'ô' | 'ồ' | 'ố' | 'ộ' | 'ổ' | 'ỗ' | 'ơ' | 'ờ' | 'ớ' | 'ợ' | 'ở' | 'ỡ' => {
                'o'
            }
            'ù' | 'ú' | 'ụ' | 'ủ' | 'ũ' | 'ư' | 'ừ' | 'ứ' | 'ự' | 'ử' | 'ữ' => 'u',
            'ỳ' | 'ý' | 'ỵ' | 'ỷ' | 'ỹ' => 'y',
            'đ' => 'd',
            _ => return None,
        })
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let lower = c.to_lowercase().next().unwrap_or(c);
        let ascii = match base(lower) {
            Some(b) if c.is_uppercase() => b.to_ascii_uppercase(),
            Some(b) => b,
            None if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_') => c,
            None => ' ',
        };
        out.push(ascii);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_the_vnpay_vectors() {
        assert_eq!(
            form_encode("Thanh toan le phi ho so 000.00.12.H62-240715-0001"),
            "Thanh+toan+le+phi+ho+so+000.00.12.H62-240715-0001"
        );
        assert_eq!(
            form_encode("Lệ phí đổi giấy phép lái xe, hồ sơ số 2/3"),
            "L%E1%BB%87+ph%C3%AD+%C4%91%E1%BB%95i+gi%E1%BA%A5y+ph%C3%A9p+l%C3%A1i+xe%2C+h%E1%BB%93+s%C6%A1+s%E1%BB%91+2%2F3"
        );
        assert_eq!(form_encode("a*b~c!d'e(f)g+h"), "a*b%7Ec%21d%27e%28f%29g%2Bh");
        assert_eq!(form_decode("a+b%20c%2B").unwrap(), "a b c+");
        assert!(form_decode("%zz").is_none());
        assert!(form_decode("%e1").is_none(), "not UTF-8");
    }

    #[test]
    fn order_info_is_plain_ascii() {
        assert_eq!(
            ascii_order_info("Lệ phí hồ sơ 000.00.12.H62-240715-0001 (Đăng ký)"),
            "Le phi ho so 000.00.12.H62-240715-0001 Dang ky"
        );
    }

    #[test]
    fn the_encoders_agree_except_on_the_disputed_characters() {
        let plain = "Thanh toan le phi ho so 000.00.12.H62-240715-0001_x";
        for e in FormEncoding::ALL {
            assert_eq!(e.encode(plain), form_encode(plain), "{e:?}");
        }
        let disputed: Vec<String> = FormEncoding::ALL.iter().map(|e| e.encode("*~!'()")).collect();
        assert_eq!(disputed, ["*%7E%21%27%28%29", "%2A%7E%21%27%28%29", "%2A~%21%27%28%29", "*~!'()"]);
    }
}
