//! The printable page of a receipt: one self-contained HTML document (no script, no external
//! resource) with a print stylesheet for A5 paper, which a browser prints or saves as PDF.
//!
//! Every value from the receipt is HTML-escaped (`esc`). The page is the receipt's
//! representation ("bản thể hiện"); the signed receipt is its content (`signature.content` in
//! the JSON), which the page shows with its signature and key so that a reader can check it.
//! No PDF is rendered server-side: see the README (Receipts) for why.

use std::fmt::Write as _;

use super::ReceiptView;
use super::words::figures;
use crate::domain::receipt::{PayerKind, ReceiptKind, ReceiptStatus};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body { font-family: "Times New Roman", "Noto Serif", serif; color: #000; background: #f4f4f4; margin: 0; }
.sheet { background: #fff; max-width: 148mm; margin: 12px auto; padding: 10mm 12mm; box-shadow: 0 0 4px #999; }
header { display: flex; justify-content: space-between; font-size: 11pt; }
h1 { text-align: center; font-size: 15pt; margin: 10px 0 2px; }
.sub { text-align: center; font-style: italic; font-size: 10pt; margin: 0 0 8px; }
.ids { text-align: right; font-size: 10.5pt; }
.banner { border: 2px solid #000; padding: 4px 8px; margin: 8px 0; font-weight: bold; text-align: center; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 8px; font-size: 11pt; margin: 8px 0; }
dt { font-weight: bold; }
table { width: 100%; border-collapse: collapse; font-size: 10.5pt; margin: 8px 0; }
th, td { border: 1px solid #000; padding: 3px 5px; vertical-align: top; }
td.n { text-align: right; white-space: nowrap; }
.words { font-style: italic; }
.sign { margin-top: 14px; font-size: 8.5pt; word-break: break-all; color: #333; }
.note { font-size: 10pt; }
@media print {
  @page { size: A5 portrait; margin: 8mm; }
  body { background: #fff; }
  .sheet { box-shadow: none; margin: 0; padding: 0; max-width: none; }
  .noprint { display: none; }
}
"#;

/// The page of a receipt.
pub fn render(v: &ReceiptView) -> String {
    let mut h = String::with_capacity(8 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Biên lai {} {} số {}</title><style>{STYLE}</style></head><body><main class=\"sheet\">",
        esc(&v.template),
        esc(&v.symbol),
        v.number
    );
    let _ = write!(
        h,
        "<header><div><strong>{}</strong><br>Mã số thuế: {}</div>\
         <div class=\"ids\">Mẫu số: <strong>{}</strong><br>Ký hiệu: <strong>{}</strong><br>Số: <strong>{}</strong></div></header>",
        esc(&v.collector.name),
        esc(&v.collector.tax_code),
        esc(&v.template),
        esc(&v.symbol),
        v.number
    );
    let title = match v.kind {
        ReceiptKind::Original => "BIÊN LAI THU PHÍ, LỆ PHÍ",
        ReceiptKind::Replacement => "BIÊN LAI THU PHÍ, LỆ PHÍ (THAY THẾ)",
        ReceiptKind::Adjustment => "BIÊN LAI THU PHÍ, LỆ PHÍ (ĐIỀU CHỈNH)",
    };
    let d = v.issue_date.naive();
    let _ = write!(
        h,
        "<h1>{title}</h1><p class=\"sub\">(Bản thể hiện của biên lai điện tử)<br>Ngày {} tháng {} năm {}</p>",
        d.format("%d"),
        d.format("%m"),
        d.format("%Y")
    );
    match v.status {
        ReceiptStatus::Replaced => {
            let _ = write!(
                h,
                "<div class=\"banner\">Biên lai này đã bị thay thế bởi biên lai {}</div>",
                esc(v.replaced_by.as_deref().unwrap_or(""))
            );
        }
        ReceiptStatus::Adjusted => {
            let _ =
                write!(h, "<div class=\"banner\">Biên lai này đã được điều chỉnh ({} lần)</div>", v.adjusted_by.len());
        }
        ReceiptStatus::Issued => {}
    }
    if let Some(r) = &v.related {
        let verb = if v.kind == ReceiptKind::Replacement { "Thay thế cho" } else { "Điều chỉnh cho" };
        let _ = write!(
            h,
            "<p class=\"note\">{verb} biên lai mẫu số {}, ký hiệu {}, số {}, ngày {}. Lý do: {}</p>",
            esc(&r.template),
            esc(&r.symbol),
            r.number,
            r.issue_date.naive().format("%d/%m/%Y"),
            esc(v.reason.as_deref().unwrap_or(""))
        );
    }
    let payer_label = if v.payer.kind == PayerKind::Budget { "Đơn vị chi trả" } else { "Người nộp" };
    let _ = write!(
        h,
        "<dl><dt>{payer_label}:</dt><dd>{}</dd><dt>Người nộp hồ sơ:</dt><dd>{}</dd>\
         <dt>Mã hồ sơ:</dt><dd>{}</dd><dt>Hình thức:</dt><dd>{}</dd></dl>",
        esc(&v.payer.name),
        esc(&v.applicant),
        esc(&v.case_code),
        if v.payer.kind == PayerKind::Budget { "Ngân sách chi trả" } else { "Thanh toán trực tuyến" }
    );
    h.push_str(
        "<table><thead><tr><th>STT</th><th>Tên loại phí, lệ phí</th><th>Loại</th><th>Tiểu mục</th>\
         <th>Số tiền (đồng)</th></tr></thead><tbody>",
    );
    for (i, it) in v.items.iter().enumerate() {
        let kind = match it.kind.as_str() {
            "phi" => "Phí",
            "le_phi" => "Lệ phí",
            _ => "",
        };
        let _ = write!(
            h,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{kind}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            i + 1,
            esc(&it.name),
            esc(it.budget_subitem.as_deref().unwrap_or("")),
            figures(it.amount)
        );
    }
    let _ = write!(
        h,
        "<tr><th colspan=\"4\">Tổng cộng</th><td class=\"n\"><strong>{}</strong></td></tr></tbody></table>\
         <p>Số tiền bằng chữ: <span class=\"words\">{}</span></p>",
        figures(v.total),
        esc(&v.total_in_words)
    );
    if let Some(n) = &v.note {
        let _ = write!(h, "<p class=\"note\">Ghi chú: {}</p>", esc(n));
    }
    let _ = write!(
        h,
        "<p class=\"sign\">Ký số bởi {} (Ed25519) lúc {}.<br>Khóa công khai: {}<br>Chữ ký: {}<br>Mã biên lai: {}</p>\
         <p class=\"noprint\">In biên lai: lệnh In của trình duyệt (Ctrl+P), khổ A5.</p>",
        esc(&v.collector.name),
        esc(&v.issued_at.to_vn_string()),
        esc(&v.signature.public_key),
        esc(&v.signature.value),
        esc(&v.receipt_id)
    );
    h.push_str("</main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("Nguyễn Văn A"), "Nguyễn Văn A");
    }
}
