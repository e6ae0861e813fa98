//! How domain values sit in database columns, on either backend.
//!
//! A tag (`Gateway`, `PaymentStatus`, `Category`...) is stored as its wire name, a parsed newtype
//! (`CaseCode`, `ProcedureCode`) as its text, `Money` as a `BIGINT` of đồng, a `Timestamp` as the
//! driver's time type, a list of tags as compact JSON text. Each is decoded back by parsing, so a
//! row type holds the domain type itself and a stored value that no longer parses is a decode
//! error naming the column, never a string that callers re-parse. The impls are generic over the
//! driver: the same row type decodes on SQLite and on PostgreSQL.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// Implements the three sqlx traits for a type stored as text: written with `$render` (an owned
/// `String`), read with `$parse` from `&str` (any `Display` error).
macro_rules! sql_as_text {
    ($t:ty, render = |$v:ident| $render:expr, parse = |$s:ident| $parse:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $t
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $t
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let $v = self;
                let text: String = $render;
                <String as sqlx::Encode<'q, DB>>::encode(text, buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $t
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let $s = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                $parse.map_err(|e| -> sqlx::error::BoxDynError { e.to_string().into() })
            }
        }
    };
}
pub(crate) use sql_as_text;

/// Implements the sqlx traits for a tag enum with `as_str()` and `FromStr`.
macro_rules! sql_tag {
    ($($t:ty),+ $(,)?) => {
        $($crate::domain::sql::sql_as_text!($t, render = |v| v.as_str().to_owned(), parse = |s| s.parse::<$t>());)+
    };
}
pub(crate) use sql_tag;

/// A value stored as compact JSON text (a list of tags, a small object). The column is `TEXT` on
/// both backends, which sqlx's own `Json` (PostgreSQL `jsonb`) is not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonText<T>(pub T);

impl<T, DB: Database> Type<DB> for JsonText<T>
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'q, T: serde::Serialize, DB: Database> Encode<'q, DB> for JsonText<T>
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, DB>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}

impl<'r, T: serde::de::DeserializeOwned, DB: Database> Decode<'r, DB> for JsonText<T>
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(JsonText(serde_json::from_str(<&'r str as Decode<'r, DB>>::decode(value)?)?))
    }
}

impl<DB: Database> Type<DB> for super::Money
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for super::Money
where
    i64: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, DB>>::encode(self.dong(), buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for super::Money
where
    i64: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(super::Money::new(<i64 as Decode<'r, DB>>::decode(value)?)?)
    }
}

type Utc = chrono::DateTime<chrono::Utc>;

impl<DB: Database> Type<DB> for super::Timestamp
where
    Utc: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <Utc as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <Utc as Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for super::Timestamp
where
    Utc: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <Utc as Encode<'q, DB>>::encode(self.0, buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for super::Timestamp
where
    Utc: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(super::Timestamp::at(<Utc as Decode<'r, DB>>::decode(value)?))
    }
}

sql_as_text!(super::CaseCode, render = |v| v.as_str().to_owned(), parse = |s| super::CaseCode::parse(s));
sql_as_text!(super::UnitCode, render = |v| v.as_str().to_owned(), parse = |s| super::UnitCode::parse(s));
sql_as_text!(super::ProcedureCode, render = |v| v.as_str().to_owned(), parse = |s| super::ProcedureCode::parse(s));
