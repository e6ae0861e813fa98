//! One way to page (SPEC §4.2): every list the API answers is `{"items": [...], "next_cursor": ...}`
//! and takes `?cursor=` and `?limit=`.
//!
//! A list route reads `cursor` and `limit` into a [`PageQuery`] (limit 1 to [`MAX_LIMIT`],
//! default [`DEFAULT_LIMIT`]), asks its store primitive for `limit + 1` rows after the cursor
//! ([`PageQuery::fetch`]) and answers [`Page::from_rows`], which keeps `limit` rows and sets
//! `next_cursor` only when the extra row shows there is more. Lists that are small by nature (one
//! case's payments, one payment's callbacks) are read whole and cut with [`Page::of_all`], so they
//! page the same way. The cursor is opaque to clients: they pass back the `next_cursor` they were
//! given, unchanged, until it is `null`. Inside it, base64url-encoded so it is URL-safe as it
//! stands, is the sort key of the last row answered (a `seq`, an id, or `date/id`; for the small
//! lists, the count answered), so it stays valid while rows are added. A cursor that does not
//! decode, or names no row (see [`PageQuery::unknown_cursor`]), is 422 naming `cursor`.

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::error::ApiError;
use crate::domain::FieldError;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 1000;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: u32,
}

impl Default for PageQuery {
    fn default() -> Self {
        Self { cursor: None, limit: DEFAULT_LIMIT }
    }
}

impl PageQuery {
    /// From the raw `cursor` and `limit` parameters; a `limit` that is not a whole number from 1
    /// to `MAX_LIMIT` is 422 naming `limit`, a cursor that does not decode 422 naming `cursor`.
    /// An empty cursor is no cursor.
    pub fn new(cursor: Option<String>, limit: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::with_key(None, limit)?;
        q.cursor = cursor.filter(|c| !c.is_empty()).map(|c| decode(&c)).transpose()?;
        Ok(q)
    }

    /// Like [`PageQuery::new`], with `after`, the older name of a sequence cursor, read as the
    /// plain `seq` it always was when no `cursor` is given.
    pub fn new_or_after(cursor: Option<String>, after: Option<String>, limit: Option<&str>) -> Result<Self, ApiError> {
        match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Self::new(Some(c), limit),
            None => Self::with_key(after, limit),
        }
    }

    /// 422 naming `cursor` for a cursor that decoded but names no row of the list: a keyset
    /// read after it comes back empty, which a cursor this list gave never does.
    pub fn unknown_cursor(&self) -> ApiError {
        bad_cursor(&self.cursor.as_deref().map(encode).unwrap_or_default())
    }

    fn with_key(cursor: Option<String>, limit: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw.trim().parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::field(FieldError::new(
                    "limit",
                    format!("{raw:?} is not a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
                ))
            })?,
        };
        Ok(Self { cursor: cursor.filter(|c| !c.is_empty()), limit })
    }

    /// Whether a keyset page read after the cursor came back empty: the cursor names no row.
    pub fn names_no_row<T>(&self, rows: &[T]) -> bool {
        self.cursor.is_some() && rows.is_empty()
    }

    /// The page's length.
    pub fn limit(&self) -> i64 {
        i64::from(self.limit)
    }

    /// How many rows to read: one more than the page holds, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit() + 1
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The cursor of a list ordered by a sequence number: the last `seq` answered, 0 for none.
    pub fn seq_cursor(&self) -> Result<i64, ApiError> {
        match self.cursor() {
            None => Ok(0),
            Some(c) => c.parse::<i64>().map_err(|_| bad_cursor(c)),
        }
    }
}

/// The query of a list that takes nothing but `cursor` and `limit`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListPage {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<String>,
}

impl ListPage {
    pub fn page(self) -> Result<PageQuery, ApiError> {
        PageQuery::new(self.cursor, self.limit.as_deref())
    }
}

/// 422 naming `cursor`: only a `next_cursor` this API answered is a valid cursor.
pub fn bad_cursor(raw: &str) -> ApiError {
    ApiError::field(FieldError::new(
        "cursor",
        format!("{raw:?} is not a cursor this list gave (pass next_cursor back)"),
    ))
}

/// The cursor a client sees for the sort key `key`: URL-safe base64 without padding.
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The sort key inside a cursor; one that is not base64url of UTF-8 text is 422 naming `cursor`.
fn decode(raw: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| bad_cursor(raw))
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from rows read with `q.fetch()` after the cursor: keeps `q.limit` rows; the next
    /// cursor is the `key` of the last one kept when a row was left over.
    pub fn from_rows(mut rows: Vec<T>, q: &PageQuery, key: impl Fn(&T) -> String) -> Self {
        let limit = q.limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(|r| encode(&key(r))) } else { None };
        Self { items: rows, next_cursor }
    }

    /// A page of a whole list that only grows at its end (one case's payments, one payment's
    /// callbacks): the cursor is how many rows the pages before answered.
    pub fn of_all(rows: Vec<T>, q: &PageQuery) -> Result<Self, ApiError> {
        let skip = match q.cursor() {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| bad_cursor(c))?,
        };
        let limit = q.limit as usize;
        let total = rows.len();
        let items: Vec<T> = rows.into_iter().skip(skip).take(limit).collect();
        let end = skip.saturating_add(items.len());
        Ok(Self { items, next_cursor: (end < total).then(|| encode(&end.to_string())) })
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

// Written out: the document needs `T` among its named schemas, which the derive leaves out for
// a generic type.
impl<T: ToSchema> PartialSchema for Page<T> {
    fn schema() -> RefOr<Schema> {
        let next = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("null on the last page; else pass it back as `cursor` for the next page."));
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .property("items", ArrayBuilder::new().items(RefOr::Ref(Ref::from_schema_name(T::name()))))
                .property("next_cursor", next)
                .required("items")
                .required("next_cursor")
                .build(),
        ))
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Page_{}", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(cursor: Option<&str>, limit: u32) -> PageQuery {
        PageQuery { cursor: cursor.map(str::to_owned), limit }
    }

    #[test]
    fn a_limit_outside_its_range_names_limit() {
        for raw in ["abc", "0", "1001", "-1", "2.5"] {
            let e = PageQuery::new(None, Some(raw)).unwrap_err().to_string();
            assert!(e.contains("limit") && e.contains("1000"), "{raw}: {e}");
        }
        assert_eq!(PageQuery::new(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(PageQuery::new(Some(String::new()), Some("7")).unwrap(), q(None, 7));
    }

    #[test]
    fn from_rows_sets_the_cursor_only_when_a_row_is_left_over() {
        let p = Page::from_rows(vec![1, 2, 3], &q(None, 2), i32::to_string);
        assert_eq!((p.items, p.next_cursor), (vec![1, 2], Some(encode("2"))));
        let p = Page::from_rows(vec![1, 2], &q(None, 2), i32::to_string);
        assert_eq!((p.items, p.next_cursor), (vec![1, 2], None));
    }

    #[test]
    fn of_all_walks_a_whole_list_once() {
        let all: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let p = Page::of_all(all.clone(), &PageQuery::new(cursor.clone(), Some("3")).unwrap()).unwrap();
            seen.extend(p.items);
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, all);
        assert!(Page::of_all(all, &q(Some("x"), 3)).unwrap_err().to_string().contains("cursor"));
    }

    #[test]
    fn a_cursor_is_url_safe_and_decodes_to_its_key() {
        let key = "2026-03-02/exc_01+x?&=#";
        let c = encode(key);
        assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{c}");
        assert_eq!(PageQuery::new(Some(c), None).unwrap().cursor.as_deref(), Some(key));
        for raw in ["not base64!", "a", "%2F"] {
            let e = PageQuery::new(Some(raw.to_owned()), None).unwrap_err().to_string();
            assert!(e.contains("cursor"), "{raw}: {e}");
        }
        // `after` is a plain seq; a `cursor` given with it wins.
        assert_eq!(PageQuery::new_or_after(None, Some("7".into()), None).unwrap().seq_cursor().unwrap(), 7);
        let both = PageQuery::new_or_after(Some(encode("9")), Some("7".into()), None).unwrap();
        assert_eq!(both.seq_cursor().unwrap(), 9);
    }

    #[test]
    fn a_seq_cursor_must_be_a_number() {
        assert_eq!(q(None, 1).seq_cursor().unwrap(), 0);
        assert_eq!(q(Some("42"), 1).seq_cursor().unwrap(), 42);
        assert!(q(Some("x"), 1).seq_cursor().unwrap_err().to_string().contains("cursor"));
    }
}
