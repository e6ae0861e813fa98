//! Closed sets of tags the SPEC names: filing channels, applicant subjects, case facts and user
//! roles.
//!
//! Each is an enum with its wire name (`online_full`, `poor_household`, `finance`), parsed with
//! `FromStr` and serde alike, so an unknown tag is refused with the list of the known ones.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}; expected one of: {expected}")]
pub struct UnknownTag {
    pub what: &'static str,
    pub got: String,
    pub expected: String,
}

/// Declares a closed set of wire names: the enum, `ALL`, `as_str`, `Display`, `FromStr` (an
/// unknown name lists the known ones), serde by wire name, its OpenAPI schema (the wire names)
/// and its database column type.
macro_rules! tag_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        // Written out rather than derived: the derive does not see a serde rename passed
        // through this macro, and the document must carry the wire names.
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                ::utoipa::openapi::RefOr::T(::utoipa::openapi::schema::Schema::Object(
                    ::utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(::utoipa::openapi::schema::Type::String)
                        .enum_values(Some([$($wire),+]))
                        .build(),
                ))
            }
        }

        impl ::utoipa::ToSchema for $name {}

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::UnknownTag;
            fn from_str(s: &str) -> Result<Self, $crate::domain::UnknownTag> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::domain::UnknownTag {
                        what: $what,
                        got: s.to_owned(),
                        expected: [$($wire),+].join(", "),
                    }),
                }
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        $crate::domain::sql::sql_tag!($name);
    };
}
pub(crate) use tag_enum;

tag_enum!(
    /// How a case was filed.
    Channel, "channel", {
        /// Fully online (toàn trình).
        OnlineFull => "online_full",
        /// Partly online (một phần).
        OnlinePartial => "online_partial",
        /// At the counter (trực tiếp).
        Counter => "counter",
        /// By post (bưu chính).
        Post => "post",
    }
);

tag_enum!(
    /// A tag of the applicant that the law exempts or favours.
    Subject, "subject", {
        PoorHousehold => "poor_household",
        NearPoorHousehold => "near_poor_household",
        PersonWithMerit => "person_with_merit",
        MartyrRelative => "martyr_relative",
        PersonWithDisability => "person_with_disability",
        Child => "child",
        Elderly => "elderly",
        Student => "student",
        EthnicMinorityDifficultArea => "ethnic_minority_difficult_area",
        BorderCommune => "border_commune",
        /// Resides in a commune with extremely difficult socio-economic conditions (xã có điều
        /// kiện kinh tế - xã hội đặc biệt khó khăn), whatever the applicant's ethnicity
        /// (TT 244/2016/TT-BTC Art. 5).
        ExtremelyDifficultCommune => "extremely_difficult_commune",
        /// Resides in a safe-zone commune (xã an toàn khu, ATK) (TT 244/2016/TT-BTC Art. 5).
        SafeZoneCommune => "safe_zone_commune",
    }
);

tag_enum!(
    /// A fact of a case that decides whether a fee item applies (catalogue `requires_facts`).
    Fact, "fact", {
        /// The event is registered after the legal deadline (for a birth: later than 60 days
        /// after it, Luật Hộ tịch 2014 Art. 15(1)); on-time registration is free (Art. 11(1)(b)).
        LateRegistration => "late_registration",
    }
);

tag_enum!(
    /// What a user may do (SPEC §4.2).
    Role, "role", {
        /// The online portal: creates cases and payments.
        Portal => "portal",
        /// Finance staff: import, reconcile, resolve, close.
        Finance => "finance",
        /// Auditors: read-only.
        Auditor => "auditor",
        /// Administrators: read-only on the API; user administration is on the CLI.
        Admin => "admin",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), *c);
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        for s in Subject::ALL {
            assert_eq!(s.as_str().parse::<Subject>().unwrap(), *s);
        }
        assert_eq!(Subject::ALL.len(), 12);
        for f in Fact::ALL {
            assert_eq!(f.as_str().parse::<Fact>().unwrap(), *f);
        }
        assert_eq!("finance".parse::<Role>().unwrap(), Role::Finance);
    }

    #[test]
    fn unknown_tags_list_the_known_ones() {
        let e = "online".parse::<Channel>().unwrap_err().to_string();
        assert!(e.contains("unknown channel \"online\""), "{e}");
        assert!(e.contains("online_full, online_partial, counter, post"), "{e}");
    }
}
