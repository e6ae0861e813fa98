//! The shape of every list answer: `{"items": [...], "next_cursor": ...}`, typed so the OpenAPI
//! document shows each list's items.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A page of `T`: `next_cursor` is `null` on the last page, else the value to pass as the next
/// request's cursor.
#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// Every item, on one page.
    pub fn all(items: Vec<T>) -> Self {
        Self { items, next_cursor: None }
    }
}

// Written out: the document needs `T` among its named schemas, which the derive leaves out for
// a generic type.
impl<T: ToSchema> PartialSchema for List<T> {
    fn schema() -> RefOr<Schema> {
        let next = ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("null on the last page; else the cursor of the next page."));
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

impl<T: ToSchema> ToSchema for List<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("List_{}", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}
