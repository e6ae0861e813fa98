//! The shared vocabulary: small types that parse at the boundary, so that an invalid case code,
//! amount or date cannot exist inside the service.
//!
//! Every other module takes these types rather than raw strings and integers. Each `parse`
//! returns a `thiserror` error that says what was wrong, so HTTP handlers and the importers can
//! name the field and the reason.

pub mod callback;
mod case;
mod case_code;
pub mod chain;
mod id;
pub mod ledger;
mod money;
pub mod payment;
mod procedure_code;
pub mod receipt;
pub mod recon;
pub mod remittance;
mod schema;
mod secret;
pub mod sql;
mod tags;
mod time;

pub use case::{Case, CaseInput, FieldError, MAX_NAME_CHARS, MAX_QUANTITY};
pub use case_code::{CaseCode, CaseCodeError, UnitCode};
pub use id::new_id;
pub use money::{Money, MoneyError};
pub use procedure_code::{ProcedureCode, ProcedureCodeError};
pub use secret::Secret;
pub use tags::{Channel, Fact, Role, Subject, UnknownTag};
pub use time::{
    BusinessDate, Clock, DateError, Held, ShiftedClock, SystemClock, Timestamp, VN_OFFSET_SECONDS, vn_offset,
};
