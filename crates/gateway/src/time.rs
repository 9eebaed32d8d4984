//! The `DateTime` scalar: instants as RFC 3339 text in UTC with milliseconds
//! (`2024-05-01T09:30:00.000Z`). Input accepts any RFC 3339 offset (`Z`, `+03:00`) and optional
//! fractional seconds. Converted by hand with the civil-calendar algorithms, so no date crate is
//! needed for the one format the API speaks.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use sijil_domain::Timestamp;

/// An instant, shown and read as RFC 3339 text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct DateTime(pub Timestamp);

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Year, month, day, hour, minute, second and millisecond (UTC) of `millis` since the epoch.
fn parts(millis: i64) -> [i64; 7] {
    let days = millis.div_euclid(MS_PER_DAY);
    let in_day = millis.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    [y, m, d, h, min, rest / 1000, rest % 1000]
}

/// [`format_rfc3339`] through `format!` (any year).
fn format_parts([y, m, d, h, min, s, ms]: [i64; 7]) -> String {
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(millis: i64) -> String {
    let parts = parts(millis);
    if !(0..=9999).contains(&parts[0]) {
        return format_parts(parts);
    }
    // Every timeline entry and event shows a time: written digit by digit, not through
    // `format!` (which was ~5 % of the server's CPU on timeline pages).
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for ((at, width), value) in [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 3)]
        .into_iter()
        .zip(parts)
    {
        let mut value = value;
        for place in (at..at + width).rev() {
            // Each value is in 0..10^width, so every digit fits in a byte.
            out[place] = b'0' + u8::try_from(value % 10).unwrap_or(0);
            value /= 10;
        }
    }
    out.iter().map(|&b| char::from(b)).collect()
}

fn digits(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`) into milliseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(text, 0..4)?;
    let month = digits(text, 5..7)?;
    let day = digits(text, 8..10)?;
    let hour = digits(text, 11..13)?;
    let minute = digits(text, 14..16)?;
    let second = digits(text, 17..19)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = text.get(start..i)?;
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = padded.parse().ok()?;
    }
    let offset_minutes = match text.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let h = digits(rest, 1..3)?;
            let m = digits(rest, 4..6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if rest.as_bytes()[0] == b'-' { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = second.min(59);
    Some(
        days * MS_PER_DAY + hour * 3_600_000 + minute * 60_000 + seconds * 1000 + millis
            - offset_minutes * 60_000,
    )
}

/// An instant in RFC 3339 form, e.g. `2024-05-01T09:30:00.000Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => parse_rfc3339(text)
                .map(|ms| DateTime(Timestamp(ms)))
                .ok_or_else(|| {
                    InputValueError::custom(
                        "expected an RFC 3339 date-time such as 2024-05-01T09:30:00Z",
                    )
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(format_rfc3339(self.0.millis()))
    }
}

impl serde::Serialize for DateTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0.millis())
    }
}

impl From<Timestamp> for DateTime {
    fn from(t: Timestamp) -> DateTime {
        DateTime(t)
    }
}

/// The server's clock, in milliseconds since the epoch.
pub fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for ms in [
            0,
            1_714_555_800_123,
            -86_400_001,
            951_782_400_000,
            4_102_444_800_000,
        ] {
            let text = format_rfc3339(ms);
            assert_eq!(parse_rfc3339(&text), Some(ms), "{text}");
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn digits_written_by_hand_read_as_format_writes_them() {
        let reference = |ms: i64| format_parts(parts(ms));
        let mut ms: i64 = -62_167_219_200_000 - 86_400_000; // the day before year 0
        let step = 7_777_777_777; // ~90 days and an odd time of day
        while ms < 253_402_300_800_000 + 10 * 86_400_000 {
            // into year 10000
            assert_eq!(format_rfc3339(ms), reference(ms), "{ms}");
            ms += step;
        }
        for ms in [0, 999, 86_399_999, 253_402_300_799_999, -1] {
            assert_eq!(format_rfc3339(ms), reference(ms), "{ms}");
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T03:00:00+03:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.123456Z"), Some(123));
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-01-01T00:00:00+3:00",
            "2024-01-01T24:00:00Z",
            "２０２４-01-01T00:00:00Z",
            "2024-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
