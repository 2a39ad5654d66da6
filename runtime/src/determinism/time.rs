//! The transaction timestamp, and the SQL text that time functions become.
//!
//! PostgreSQL gives `now()` one value per transaction: the moment the transaction started on that
//! server. Replicas start the "same" transaction at different moments, so Barista takes the value
//! from the log instead: the leader chooses one timestamp per transaction, every replica renders it
//! to the same text, and PostgreSQL parses that text back to the same value everywhere.
//!
//! Two renderings, one per kind of statement (see [`TimeHead`]):
//! - a literal, `'2026-11-25 14:50:00.123456+00'::timestamptz`, for statements that run now;
//! - a read of the transaction's pinned setting, `current_setting('barista.txn_timestamp')::timestamptz`,
//!   for expressions PostgreSQL stores and evaluates later (column defaults, views, function
//!   bodies), where a literal would freeze the moment of the `CREATE`.

use std::fmt::Write as _;

use crate::calendar::civil_from_days;

/// The PostgreSQL setting through which the executor pins the transaction timestamp.
///
/// The executor sets it at the start of every transaction it runs (see [`pin_timestamp_sql`]);
/// stored expressions read it. The `barista.` prefix is reserved: clients may not set it.
pub const PINNED_TIMESTAMP_SETTING: &str = "barista.txn_timestamp";

/// One transaction's timestamp, chosen by the leader: microseconds since the Unix epoch, UTC.
///
/// Limited to the years 1 to 9999 so that every value renders as a plain four-digit year (no
/// `BC`, no five-digit years): a leader's clock is never outside that range, and a value that is
/// must not produce text PostgreSQL reads differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnTimestamp {
    unix_us: i64,
}

/// A transaction timestamp outside the years 1 to 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transaction timestamp {unix_us} µs since the Unix epoch is outside the years 1 to 9999")]
pub struct TimestampOutOfRange {
    /// The rejected value.
    pub unix_us: i64,
}

const US_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

impl TxnTimestamp {
    /// `0001-01-01 00:00:00.000000+00`.
    pub const MIN_UNIX_US: i64 = -62_135_596_800 * US_PER_SECOND;
    /// `9999-12-31 23:59:59.999999+00`.
    pub const MAX_UNIX_US: i64 = 253_402_300_800 * US_PER_SECOND - 1;

    /// The timestamp `unix_us` microseconds after 1970-01-01 00:00:00 UTC.
    pub fn from_unix_micros(unix_us: i64) -> Result<Self, TimestampOutOfRange> {
        if (Self::MIN_UNIX_US..=Self::MAX_UNIX_US).contains(&unix_us) {
            Ok(Self { unix_us })
        } else {
            Err(TimestampOutOfRange { unix_us })
        }
    }

    /// Microseconds since the Unix epoch, UTC.
    pub fn unix_micros(self) -> i64 {
        self.unix_us
    }

    /// The timestamp as PostgreSQL `timestamptz` input in UTC, always with six fractional
    /// digits: `2026-11-25 14:50:00.123456+00`. Fixed width, so equal values give equal text.
    pub fn to_postgres_text(self) -> String {
        let seconds = self.unix_us.div_euclid(US_PER_SECOND);
        let micros = self.unix_us.rem_euclid(US_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let mut text = String::with_capacity(29);
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}+00",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60,
        );
        text
    }
}

/// The statement the executor runs first in every transaction, so that stored expressions
/// (rewritten to read [`PINNED_TIMESTAMP_SETTING`]) see the transaction's timestamp.
///
/// `set_config(..., true)` is `SET LOCAL`: it ends with the transaction, so a replica that
/// restarts and re-applies the transaction pins it again from the same log entry.
pub fn pin_timestamp_sql(timestamp: TxnTimestamp) -> String {
    format!("SELECT pg_catalog.set_config('{PINNED_TIMESTAMP_SETTING}', '{}', true)", timestamp.to_postgres_text())
}

/// Which PostgreSQL type a time function returns; each is a cast of the transaction timestamp,
/// so the date and time forms follow the session's `TimeZone` exactly as PostgreSQL's own do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeForm {
    /// `now()`, `CURRENT_TIMESTAMP`, `transaction_timestamp()`, `statement_timestamp()`.
    Timestamptz,
    /// `CURRENT_DATE`.
    Date,
    /// `CURRENT_TIME`.
    Timetz,
    /// `LOCALTIME`.
    Time,
    /// `LOCALTIMESTAMP`.
    Timestamp,
}

/// Where the value comes from in the rewritten text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeHead {
    /// A literal: for statements PostgreSQL evaluates as it runs them.
    Literal,
    /// The pinned setting: for expressions PostgreSQL stores and evaluates in later transactions.
    Pinned,
}

/// The text a time function becomes. `precision` is the digits of `CURRENT_TIME(3)` and the
/// like, kept as written so PostgreSQL applies its own rounding (and its own range check).
pub(crate) fn render_time(head: TimeHead, form: TimeForm, precision: Option<&str>, timestamp: TxnTimestamp) -> String {
    let mut text = match head {
        TimeHead::Literal => format!("'{}'::timestamptz", timestamp.to_postgres_text()),
        TimeHead::Pinned => {
            format!("current_setting('{PINNED_TIMESTAMP_SETTING}')::timestamptz")
        }
    };
    let cast = match form {
        TimeForm::Timestamptz => None,
        TimeForm::Date => Some("date"),
        TimeForm::Timetz => Some("timetz"),
        TimeForm::Time => Some("time"),
        TimeForm::Timestamp => Some("timestamp"),
    };
    if let Some(cast) = cast {
        text.push_str("::");
        text.push_str(cast);
    }
    // `'…'::timestamptz(3)`: a type modifier on the last cast, which rounds exactly as
    // `CURRENT_TIMESTAMP(3)` does.
    if let Some(digits) = precision {
        text.push('(');
        text.push_str(digits);
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(unix_us: i64) -> String {
        match TxnTimestamp::from_unix_micros(unix_us) {
            Ok(ts) => ts.to_postgres_text(),
            Err(e) => format!("{e}"),
        }
    }

    #[test]
    fn renders_known_instants_in_utc_with_six_digits() {
        assert_eq!(text(0), "1970-01-01 00:00:00.000000+00");
        assert_eq!(text(-1), "1969-12-31 23:59:59.999999+00");
        assert_eq!(text(1_700_000_000_000_000), "2023-11-14 22:13:20.000000+00");
        assert_eq!(text(1_795_618_200_123_456), "2026-11-25 14:50:00.123456+00");
        assert_eq!(text(1_709_251_199_999_999), "2024-02-29 23:59:59.999999+00");
        assert_eq!(text(951_782_400_000_000), "2000-02-29 00:00:00.000000+00");
        assert_eq!(text(TxnTimestamp::MIN_UNIX_US), "0001-01-01 00:00:00.000000+00");
        assert_eq!(text(TxnTimestamp::MAX_UNIX_US), "9999-12-31 23:59:59.999999+00");
    }

    #[test]
    fn refuses_timestamps_outside_years_1_to_9999() {
        assert!(TxnTimestamp::from_unix_micros(TxnTimestamp::MIN_UNIX_US - 1).is_err());
        assert!(TxnTimestamp::from_unix_micros(TxnTimestamp::MAX_UNIX_US + 1).is_err());
        assert!(TxnTimestamp::from_unix_micros(i64::MIN).is_err());
        assert!(TxnTimestamp::from_unix_micros(i64::MAX).is_err());
    }

    #[test]
    fn renders_each_form_as_a_cast_of_the_timestamp() {
        let ts = TxnTimestamp::from_unix_micros(0).expect("in range");
        let lit = "'1970-01-01 00:00:00.000000+00'::timestamptz";
        let cases = [
            (TimeForm::Timestamptz, None, lit.to_string()),
            (TimeForm::Timestamptz, Some("3"), format!("{lit}(3)")),
            (TimeForm::Date, None, format!("{lit}::date")),
            (TimeForm::Timetz, Some("2"), format!("{lit}::timetz(2)")),
            (TimeForm::Time, None, format!("{lit}::time")),
            (TimeForm::Timestamp, Some("0"), format!("{lit}::timestamp(0)")),
        ];
        for (form, precision, expected) in cases {
            assert_eq!(render_time(TimeHead::Literal, form, precision, ts), expected);
        }
        assert_eq!(
            render_time(TimeHead::Pinned, TimeForm::Date, None, ts),
            "current_setting('barista.txn_timestamp')::timestamptz::date"
        );
    }

    #[test]
    fn pin_statement_sets_the_setting_for_the_transaction_only() {
        let ts = TxnTimestamp::from_unix_micros(0).expect("in range");
        assert_eq!(
            pin_timestamp_sql(ts),
            "SELECT pg_catalog.set_config('barista.txn_timestamp', \
             '1970-01-01 00:00:00.000000+00', true)"
        );
    }
}
