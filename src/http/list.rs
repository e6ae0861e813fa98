//! The shape of every list answer: `{"items": [...], "next_cursor": ...}`, typed so the OpenAPI
//! document shows each list's items.

use serde::Serialize;
use utoipa::ToSchema;

/// A page of `T`: `next_cursor` is `null` on the last page, else the value to pass as the next
/// request's cursor.
#[derive(Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> List<T> {
    /// Every item, on one page.
    pub fn all(items: Vec<T>) -> Self {
        Self { items, next_cursor: None }
    }
}
