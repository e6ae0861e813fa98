//! References written inside free text: a bank statement's description (nội dung, diễn giải)
//! carries the gateway's transaction number and our reference after labels, among other words.
//!
//! A profile's `[extract]` table names, for `gateway_txn_no` and `txn_ref`, the label that
//! precedes the value in the field's column (both fields may share one column). The value is the
//! run of characters after the label up to a space or one of `,;|()`, and must not be empty.
//! With `skip_unreferenced`, a line whose text holds no `txn_ref` label is not ours (other money
//! on the account) and is left out; every other line must hold every label.

/// The characters that end a value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || ",;|()".contains(c)
}

/// The value after `label` in `text`, or `None` when the label is absent or nothing follows it.
pub fn after_label<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let start = text.find(label)? + label.len();
    let rest = &text[start..];
    let end = rest.find(ends_value).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

/// A description holding `values`, each after its label (the simulator's statements, fixtures).
pub fn compose(prefix: &str, values: &[(&str, &str)]) -> String {
    let mut out = prefix.to_owned();
    for (label, value) in values {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(label);
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_their_labels_up_to_a_separator() {
        let t = "TT DVCQG MGD:240715000123 MTC:DVC240715ABCDEFGHJKL HS 000.00.12.H62-240715-0001";
        assert_eq!(after_label(t, "MGD:"), Some("240715000123"));
        assert_eq!(after_label(t, "MTC:"), Some("DVC240715ABCDEFGHJKL"));
        assert_eq!(after_label("MTC:ABC;MGD:9", "MTC:"), Some("ABC"));
        assert_eq!(after_label("MTC: ABC", "MTC:"), None);
        assert_eq!(after_label("no labels", "MTC:"), None);
        assert_eq!(compose("TT DVCQG", &[("MGD:", "1"), ("MTC:", "R")]), "TT DVCQG MGD:1 MTC:R");
    }
}
