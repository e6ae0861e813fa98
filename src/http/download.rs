//! File downloads, written once for the API and the dashboard: the body, its type and the name
//! the browser saves it under (`Content-Disposition: attachment`).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

/// The media type of an XLSX workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The media type of a CSV file (UTF-8).
pub const CSV: &str = "text/csv; charset=utf-8";

/// The media type of a ZIP archive.
pub const ZIP: &str = "application/zip";

/// A 200 answer carrying `body` as a file named `file`. The name is ours (dates, periods, codes),
/// never the caller's text; one that cannot be a header value is left out, not the file.
pub fn download(body: impl Into<Body>, content_type: &'static str, file: &str) -> Response {
    let mut res = (StatusCode::OK, body.into()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_names_its_file_and_type_and_drops_a_name_that_is_not_a_header() {
        let res = download(b"a,b\n".to_vec(), CSV, "doi-soat-2024-07-15-vnpay.csv");
        assert_eq!(res.headers()[header::CONTENT_TYPE], CSV);
        assert_eq!(
            res.headers()[header::CONTENT_DISPOSITION],
            "attachment; filename=\"doi-soat-2024-07-15-vnpay.csv\""
        );
        let res = download(Vec::new(), ZIP, "bad\nname.zip");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(header::CONTENT_DISPOSITION).is_none());
    }
}
