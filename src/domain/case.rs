//! A case (hồ sơ) as the portal and the one-stop system send it, and the checks that make it one.
//!
//! `CaseInput` is the wire form (JSON body, JSON import element or CSV row), all strings;
//! `CaseInput::validate` turns it into a `Case`, naming the field of the first problem.
//! Inside the service only `Case` exists: its code, date and unit agree with each other.

use serde::{Deserialize, Serialize};

use super::{CaseCode, Channel, Fact, ProcedureCode, Subject, Timestamp, UnitCode};

/// Largest quantity a case may carry (copies, certificates, persons).
pub const MAX_QUANTITY: u32 = 9_999;
/// Longest applicant name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 300;

/// What is wrong with an input, and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl ToString) -> Self {
        Self { field: field.into(), reason: reason.to_string() }
    }
}

/// The wire form of a case. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    #[serde(default)]
    pub case_code: Option<String>,
    pub procedure_code: String,
    pub applicant_name: String,
    pub channel: String,
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Facts that decide which fee items apply (e.g. `late_registration`); default none.
    #[serde(default)]
    pub facts: Vec<String>,
    #[serde(default)]
    pub quantity: Option<u32>,
    pub received_at: String,
    pub receiving_unit: String,
}

/// A valid case. Invariants: `received_at`'s date at +07:00 equals the code's `YYMMDD`;
/// `receiving_unit` equals the code's unit; `subjects` and `facts` are sorted and unique;
/// `1 <= quantity <= MAX_QUANTITY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Case {
    pub case_code: CaseCode,
    pub procedure_code: ProcedureCode,
    pub applicant_name: String,
    pub channel: Channel,
    pub subjects: Vec<Subject>,
    pub facts: Vec<Fact>,
    pub quantity: u32,
    pub received_at: Timestamp,
    pub receiving_unit: UnitCode,
}

impl Case {
    /// The receipt date, which decides which rules apply.
    pub fn receipt_date(&self) -> super::BusinessDate {
        self.received_at.business_date()
    }
}

impl CaseInput {
    /// Checks every field. `path_code` is the code the request addressed (PUT); the body's
    /// `case_code`, when given, must equal it. Without a path code the body must carry one.
    pub fn validate(self, path_code: Option<&CaseCode>) -> Result<Case, FieldError> {
        let case_code = match (path_code, self.case_code.as_deref()) {
            (Some(p), Some(b)) if p.as_str() != b => {
                return Err(FieldError::new("case_code", format!("{b:?} differs from the path's {p}")));
            }
            (Some(p), _) => p.clone(),
            (None, Some(b)) => CaseCode::parse(b).map_err(|e| FieldError::new("case_code", e))?,
            (None, None) => return Err(FieldError::new("case_code", "is required")),
        };
        let procedure_code =
            ProcedureCode::parse(self.procedure_code.trim()).map_err(|e| FieldError::new("procedure_code", e))?;
        let applicant_name = self.applicant_name.trim().to_owned();
        if applicant_name.is_empty() {
            return Err(FieldError::new("applicant_name", "must not be empty"));
        }
        if applicant_name.chars().count() > MAX_NAME_CHARS {
            return Err(FieldError::new("applicant_name", format!("is longer than {MAX_NAME_CHARS} characters")));
        }
        if applicant_name.chars().any(char::is_control) {
            return Err(FieldError::new("applicant_name", "must not contain control characters"));
        }
        let channel: Channel = self.channel.parse().map_err(|e| FieldError::new("channel", e))?;
        let mut subjects = Vec::with_capacity(self.subjects.len());
        for s in &self.subjects {
            subjects.push(s.parse::<Subject>().map_err(|e| FieldError::new("subjects", e))?);
        }
        subjects.sort();
        subjects.dedup();
        let mut facts = Vec::with_capacity(self.facts.len());
        for f in &self.facts {
            facts.push(f.parse::<Fact>().map_err(|e| FieldError::new("facts", e))?);
        }
        facts.sort();
        facts.dedup();
        let quantity = self.quantity.unwrap_or(1);
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(FieldError::new("quantity", format!("must be 1 to {MAX_QUANTITY}, got {quantity}")));
        }
        let received_at = Timestamp::parse(&self.received_at).map_err(|e| FieldError::new("received_at", e))?;
        let received_date = received_at.business_date().naive();
        if received_date != case_code.receipt_date() {
            return Err(FieldError::new(
                "received_at",
                format!(
                    "its date in Asia/Ho_Chi_Minh is {received_date}, but the case code says {}",
                    case_code.receipt_date()
                ),
            ));
        }
        let receiving_unit =
            UnitCode::parse(self.receiving_unit.trim()).map_err(|e| FieldError::new("receiving_unit", e))?;
        if &receiving_unit != case_code.unit() {
            return Err(FieldError::new(
                "receiving_unit",
                format!("{receiving_unit} differs from the case code's unit {}", case_code.unit()),
            ));
        }
        Ok(Case {
            case_code,
            procedure_code,
            applicant_name,
            channel,
            subjects,
            facts,
            quantity,
            received_at,
            receiving_unit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> CaseInput {
        CaseInput {
            case_code: Some("000.00.12.H62-240715-0001".into()),
            procedure_code: "1.001193".into(),
            applicant_name: " Nguyễn Văn A ".into(),
            channel: "online_full".into(),
            subjects: vec!["student".into(), "poor_household".into(), "student".into()],
            facts: vec!["late_registration".into(), "late_registration".into()],
            quantity: None,
            received_at: "2024-07-15T09:30:00+07:00".into(),
            receiving_unit: "000.00.12.H62".into(),
        }
    }

    #[test]
    fn a_good_case_is_normalised() {
        let c = input().validate(None).unwrap();
        assert_eq!(c.applicant_name, "Nguyễn Văn A");
        assert_eq!(c.subjects, vec![Subject::PoorHousehold, Subject::Student]);
        assert_eq!(c.facts, vec![Fact::LateRegistration]);
        assert_eq!(c.quantity, 1);
        assert_eq!(c.receipt_date().to_string(), "2024-07-15");
    }

    #[test]
    fn the_receipt_date_is_taken_in_hanoi_time() {
        // 2024-07-14T23:00:00Z is 06:00 on the 15th in Hà Nội.
        let mut i = input();
        i.received_at = "2024-07-14T23:00:00Z".into();
        assert!(i.validate(None).is_ok());
        let mut i = input();
        i.received_at = "2024-07-15T17:00:00Z".into();
        let e = i.validate(None).unwrap_err();
        assert_eq!(e.field, "received_at");
        assert!(e.reason.contains("2024-07-16"), "{e}");
    }

    #[test]
    fn each_bad_field_is_named() {
        let path = CaseCode::parse("000.00.12.H62-240715-0002").unwrap();
        type Change = Box<dyn Fn(&mut CaseInput)>;
        let checks: Vec<(Change, Option<&CaseCode>, &str)> = vec![
            (Box::new(|_| {}), Some(&path), "case_code"),
            (Box::new(|i| i.case_code = None), None, "case_code"),
            (Box::new(|i| i.procedure_code = "1.1193".into()), None, "procedure_code"),
            (Box::new(|i| i.applicant_name = "  ".into()), None, "applicant_name"),
            (Box::new(|i| i.applicant_name = "a\u{0}b".into()), None, "applicant_name"),
            (Box::new(|i| i.channel = "web".into()), None, "channel"),
            (Box::new(|i| i.subjects = vec!["vip".into()]), None, "subjects"),
            (Box::new(|i| i.facts = vec!["late".into()]), None, "facts"),
            (Box::new(|i| i.quantity = Some(0)), None, "quantity"),
            (Box::new(|i| i.received_at = "2024-07-15 09:30".into()), None, "received_at"),
            (Box::new(|i| i.receiving_unit = "000.00.13.H62".into()), None, "receiving_unit"),
            (Box::new(|i| i.receiving_unit = "H62".into()), None, "receiving_unit"),
        ];
        for (change, path, field) in checks {
            let mut i = input();
            change(&mut i);
            assert_eq!(i.validate(path).unwrap_err().field, field);
        }
    }
}
