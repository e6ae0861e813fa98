//! Time: the business date, timestamps as the SPEC prints them, and the injectable clock.
//!
//! Vietnam has kept UTC+7 with no daylight saving since 1975, so Asia/Ho_Chi_Minh is the fixed
//! offset +07:00; using it avoids shipping a time-zone database for one zone. Instants are kept
//! as `DateTime<Utc>` everywhere; they are shown with `+07:00` (SPEC §4.1), and a business date is
//! the calendar date of an instant at +07:00.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, SubsecRound, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const VN_OFFSET_SECONDS: i32 = 7 * 3600;

/// The Asia/Ho_Chi_Minh offset, +07:00.
pub fn vn_offset() -> FixedOffset {
    FixedOffset::east_opt(VN_OFFSET_SECONDS).expect("+07:00 is a valid offset")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("date must be YYYY-MM-DD, got {0:?}")]
    Date(String),
    #[error("time must be RFC 3339 with an offset (e.g. 2024-07-15T09:30:00+07:00), got {0:?}")]
    Timestamp(String),
}

/// A calendar date in Asia/Ho_Chi_Minh: the day an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessDate(NaiveDate);

impl BusinessDate {
    pub fn new(d: NaiveDate) -> Self {
        Self(d)
    }

    /// The business date of an instant.
    pub fn of(t: DateTime<Utc>) -> Self {
        Self(t.with_timezone(&vn_offset()).date_naive())
    }

    pub fn parse(s: &str) -> Result<Self, DateError> {
        // `%Y` alone would accept "24-7-5"; insist on the shape YYYY-MM-DD.
        let shaped = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) if shaped => Ok(Self(d)),
            _ => Err(DateError::Date(s.to_owned())),
        }
    }

    pub fn naive(self) -> NaiveDate {
        self.0
    }

    /// The first instant of this date at +07:00.
    pub fn start(self) -> DateTime<Utc> {
        self.0
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_local_timezone(vn_offset())
            .single()
            .expect("a fixed offset has no gaps")
            .with_timezone(&Utc)
    }

    pub fn succ(self) -> Self {
        Self(self.0.succ_opt().expect("dates this service handles are far from the end of time"))
    }
}

impl fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl FromStr for BusinessDate {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, DateError> {
        Self::parse(s)
    }
}

impl Serialize for BusinessDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BusinessDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An instant. Serialised as RFC 3339 at +07:00 (`2024-07-15T09:30:00+07:00`); parsed from
/// RFC 3339 with any explicit offset (a time without an offset is ambiguous and refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn parse(s: &str) -> Result<Self, DateError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| Self::at(t.with_timezone(&Utc)))
            .map_err(|_| DateError::Timestamp(s.to_owned()))
    }

    /// An instant, kept to the microsecond: both databases store microseconds, so a value read
    /// back equals the value written.
    pub fn at(t: DateTime<Utc>) -> Self {
        Self(t.trunc_subsecs(6))
    }

    pub fn business_date(self) -> BusinessDate {
        BusinessDate::of(self.0)
    }

    /// RFC 3339 at +07:00; fractions of a second are shown only when present.
    pub fn to_vn_string(self) -> String {
        self.0.with_timezone(&vn_offset()).to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vn_string())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_vn_string())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where "now" comes from. The server and the workers read time only through this, so the demo
/// and the tests can run a business day on a chosen date.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Real time shifted by a fixed amount, so that a run "happens" on another day while durations
/// (timeouts, retry delays) stay real. Used by the demo and the tests.
#[derive(Debug)]
pub struct ShiftedClock {
    state: Mutex<Shift>,
}

/// Invariant: while `holds > 0`, `held_at` is set and the clock reads exactly it (`by` is then
/// not read; `advance` moves both).
#[derive(Debug, Clone, Copy)]
struct Shift {
    /// Added to real time while the clock runs.
    by: TimeDelta,
    /// The instant the clock stands still at while held.
    held_at: Option<DateTime<Utc>>,
    /// How many `Held` guards are alive.
    holds: usize,
}

impl ShiftedClock {
    /// A clock whose current time is `at`.
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self { state: Mutex::new(Shift { by: at - Utc::now(), held_at: None, holds: 0 }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Shift> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves this clock forward (or back) by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let mut s = self.state();
        s.by += by;
        if let Some(at) = s.held_at.as_mut() {
            *at += by;
        }
    }

    /// Stops the clock where it is: everyone reading it sees the same instant until the last
    /// guard is dropped (holds nest; a panic releases them), and then it runs again from that
    /// instant, not jumping over the time held. Tests hold it around steps that must happen "at
    /// once" (a payment created and its page opened within a one-second TTL), whatever the load.
    pub fn hold(&self) -> Held<'_> {
        let mut s = self.state();
        if s.holds == 0 {
            s.held_at = Some(Utc::now() + s.by);
        }
        s.holds += 1;
        Held(self)
    }
}

/// A hold on a `ShiftedClock`; dropping the last one lets the clock run again.
#[must_use = "the clock runs again as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Held<'c>(&'c ShiftedClock);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.holds = s.holds.saturating_sub(1);
        if s.holds == 0
            && let Some(at) = s.held_at.take()
        {
            s.by = at - Utc::now();
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let s = *self.state();
        s.held_at.unwrap_or_else(|| Utc::now() + s.by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_clock_stands_still_moves_only_when_advanced_and_resumes_without_a_jump() {
        let clock = ShiftedClock::starting_at(Timestamp::parse("2024-07-15T02:00:00Z").unwrap().0);
        let held_at;
        {
            let _outer = clock.hold();
            held_at = clock.now();
            {
                let _inner = clock.hold();
            }
            // Real time runs on while the clock is held; an inner hold's end does not release it.
            std::thread::sleep(std::time::Duration::from_millis(400));
            assert_eq!(clock.now(), held_at, "held");
            clock.advance(TimeDelta::minutes(2));
            assert_eq!(clock.now(), held_at + TimeDelta::minutes(2));
        }
        let resumed = clock.now();
        // It runs again from where it stood, not 400 ms on, where real time went meanwhile.
        let stood = held_at + TimeDelta::minutes(2);
        assert!(resumed >= stood && resumed < stood + TimeDelta::milliseconds(400), "{resumed} {stood}");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.now() > resumed, "running");
    }

    #[test]
    fn business_date_turns_at_midnight_in_hanoi() {
        let before = Timestamp::parse("2024-07-15T16:59:59Z").unwrap();
        let after = Timestamp::parse("2024-07-15T17:00:00Z").unwrap();
        assert_eq!(before.business_date().to_string(), "2024-07-15");
        assert_eq!(after.business_date().to_string(), "2024-07-16");
        assert_eq!(after.to_vn_string(), "2024-07-16T00:00:00+07:00");
        assert_eq!(BusinessDate::parse("2024-07-16").unwrap().start(), after.0);
    }

    #[test]
    fn dates_and_times_must_have_their_full_shape() {
        for bad in ["2024-7-15", "15/07/2024", "2024-02-30", "20240715", ""] {
            assert!(BusinessDate::parse(bad).is_err(), "{bad}");
        }
        for bad in ["2024-07-15 09:30:00", "2024-07-15T09:30:00", "yesterday"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        let t = Timestamp::parse("2024-07-15T02:30:00Z").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2024-07-15T09:30:00+07:00\"");
    }

    #[test]
    fn a_shifted_clock_starts_where_it_is_told_and_advances() {
        let at = Timestamp::parse("2024-07-15T08:00:00+07:00").unwrap().0;
        let c = ShiftedClock::starting_at(at);
        assert!((c.now() - at).num_seconds().abs() < 5);
        c.advance(TimeDelta::hours(2));
        assert!((c.now() - at - TimeDelta::hours(2)).num_seconds().abs() < 5);
    }
}
