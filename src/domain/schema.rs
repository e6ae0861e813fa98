//! The OpenAPI schemas of the vocabulary's types that serialise by hand (as a string or a
//! number), so every type built on them can derive `utoipa::ToSchema` and the API document says
//! what the wire carries: a case code is a patterned string, money a whole number of đồng.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

fn string(description: &str, pattern: Option<&str>, format: Option<KnownFormat>, example: &str) -> RefOr<Schema> {
    let mut b = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .examples([serde_json::Value::String(example.to_owned())]);
    if let Some(p) = pattern {
        b = b.pattern(Some(p));
    }
    if let Some(f) = format {
        b = b.format(Some(SchemaFormat::KnownFormat(f)));
    }
    RefOr::T(Schema::Object(b.build()))
}

macro_rules! schema {
    ($ty:ty, $name:literal, $body:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $body
            }
        }
        impl ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}

schema!(
    super::CaseCode,
    "CaseCode",
    string(
        "A case code (mã hồ sơ): receiving unit, the receipt date YYMMDD, a sequence 0001-9999.",
        Some(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{4}$"),
        None,
        "000.00.12.H62-240715-0001",
    )
);
schema!(
    super::UnitCode,
    "UnitCode",
    string("A receiving unit's code.", Some(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$"), None, "000.00.12.H62")
);
schema!(
    super::ProcedureCode,
    "ProcedureCode",
    string("A procedure's code in the national catalogue.", None, None, "1.001193")
);
schema!(
    super::BusinessDate,
    "Date",
    string("A business date in Asia/Ho_Chi_Minh.", None, Some(KnownFormat::Date), "2024-07-15")
);
schema!(
    super::Timestamp,
    "Timestamp",
    string("RFC 3339 at +07:00.", None, Some(KnownFormat::DateTime), "2024-07-15T09:30:00+07:00")
);
schema!(
    super::Money,
    "Money",
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0))
            .description(Some("Whole đồng (VND), never a float."))
            .examples([serde_json::json!(115000)])
            .build(),
    ))
);
schema!(
    super::remittance::Period,
    "Period",
    string("A remittance period: a month, an ISO week or a day.", None, None, "2024-07")
);
schema!(
    super::receipt::ReceiptRef,
    "ReceiptRef",
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .description(Some("A receipt's template, symbol and number."))
            .property("template", String::schema())
            .property("symbol", String::schema())
            .property("number", i64::schema())
            .required("template")
            .required("symbol")
            .required("number")
            .build(),
    ))
);
