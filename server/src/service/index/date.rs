//! The instant range a FHIR date, dateTime or instant covers (search.html#date): a value is
//! as precise as it is written, so `2021` covers the whole year and `2021-07-01T08:30`
//! the whole minute. Ranges are milliseconds since the epoch, both ends inclusive. A value
//! without a time zone is read in `default_offset` (the server's zone).

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

/// A closed range of instants, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i64,
    pub hi: i64,
}

/// The range `value` covers, or `None` when it is no FHIR date, dateTime or instant.
pub fn range(value: &str, default_offset: FixedOffset) -> Option<Range> {
    let (date_part, time_part) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let Some(time_part) = time_part else {
        return date_range(date_part, default_offset);
    };
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()?;
    let (clock, offset) = split_zone(time_part)?;
    let offset = offset.unwrap_or(default_offset);
    let (time, span_ms) = parse_clock(clock)?;
    let local = NaiveDateTime::new(date, time);
    let start = offset.utc_millis(local)?;
    Some(Range {
        lo: start,
        hi: start + span_ms - 1,
    })
}

fn date_range(value: &str, offset: FixedOffset) -> Option<Range> {
    let parts: Vec<&str> = value.split('-').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (start, end) = match parts.as_slice() {
        [y] if digits(y, 4) => {
            let y: i32 = y.parse().ok()?;
            (
                NaiveDate::from_ymd_opt(y, 1, 1)?,
                NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
            )
        }
        [y, m] if digits(y, 4) && digits(m, 2) => {
            let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
            let next = if start.month() == 12 {
                NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)?
            };
            (start, next)
        }
        [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
            let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            (start, start.succ_opt()?)
        }
        _ => return None,
    };
    let lo = offset.utc_millis(start.and_time(NaiveTime::MIN))?;
    let next = offset.utc_millis(end.and_time(NaiveTime::MIN))?;
    Some(Range { lo, hi: next - 1 })
}

/// Splits `08:30:00+07:00` into the clock and its zone (`Z`, `+hh:mm`, `-hh:mm`).
fn split_zone(time: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, FixedOffset::east_opt(0)));
    }
    match time.rfind(['+', '-']) {
        Some(i) => {
            let zone = &time[i..];
            let offset = DateTime::parse_from_str(
                &format!("2000-01-01T00:00:00{zone}"),
                "%Y-%m-%dT%H:%M:%S%:z",
            )
            .ok()?
            .offset()
            .to_owned();
            Some((&time[..i], Some(offset)))
        }
        None => Some((time, None)),
    }
}

/// A clock time and how long its precision spans, in ms (`08:30` spans a minute).
fn parse_clock(clock: &str) -> Option<(NaiveTime, i64)> {
    let fields: Vec<&str> = clock.split(':').collect();
    let two = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    match fields.as_slice() {
        [h, m] if two(h) && two(m) => Some((
            NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)?,
            60_000,
        )),
        [h, m, s] if two(h) && two(m) => {
            let (whole, fraction) = match s.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (*s, None),
            };
            if !two(whole) {
                return None;
            }
            let (millis, span) = match fraction {
                None => (0, 1000),
                Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                    let padded = format!("{f:0<3}");
                    let millis: u32 = padded[..3].parse().ok()?;
                    (
                        millis,
                        if f.len() == 1 {
                            100
                        } else if f.len() == 2 {
                            10
                        } else {
                            1
                        },
                    )
                }
                Some(_) => return None,
            };
            Some((
                NaiveTime::from_hms_milli_opt(
                    h.parse().ok()?,
                    m.parse().ok()?,
                    whole.parse().ok()?,
                    millis,
                )?,
                span,
            ))
        }
        _ => None,
    }
}

trait LocalToMillis {
    fn utc_millis(&self, local: NaiveDateTime) -> Option<i64>;
}

impl LocalToMillis for FixedOffset {
    fn utc_millis(&self, local: NaiveDateTime) -> Option<i64> {
        let utc = local.checked_sub_signed(Duration::seconds(i64::from(self.local_minus_utc())))?;
        Some(utc.and_utc().timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn precision_sets_the_range() {
        assert_eq!(
            range("2021", utc()),
            Some(Range {
                lo: ms("2021-01-01T00:00:00Z"),
                hi: ms("2022-01-01T00:00:00Z") - 1
            })
        );
        assert_eq!(
            range("2024-02", utc()),
            Some(Range {
                lo: ms("2024-02-01T00:00:00Z"),
                hi: ms("2024-03-01T00:00:00Z") - 1
            })
        );
        assert_eq!(
            range("2021-12-31", utc()),
            Some(Range {
                lo: ms("2021-12-31T00:00:00Z"),
                hi: ms("2022-01-01T00:00:00Z") - 1
            })
        );
        assert_eq!(
            range("2021-07-01T08:30+07:00", utc()),
            Some(Range {
                lo: ms("2021-07-01T01:30:00Z"),
                hi: ms("2021-07-01T01:31:00Z") - 1
            })
        );
        assert_eq!(
            range("2021-07-01T08:30:15.5Z", utc()),
            Some(Range {
                lo: ms("2021-07-01T08:30:15.500Z"),
                hi: ms("2021-07-01T08:30:15.600Z") - 1
            })
        );
        assert_eq!(
            range("2021-07-01T08:30:15.123-03:00", utc()).map(|r| r.hi - r.lo),
            Some(0)
        );
    }

    #[test]
    fn dates_without_zone_use_the_server_zone() {
        let hanoi = FixedOffset::east_opt(7 * 3600).unwrap();
        let day = range("2021-07-01", hanoi).unwrap();
        assert_eq!(day.lo, ms("2021-06-30T17:00:00Z"));
        let shot = range("2021-07-01T06:00:00+07:00", utc()).unwrap();
        assert!(day.lo <= shot.lo && shot.hi <= day.hi);
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "",
            "21",
            "2021-13",
            "2021-02-30",
            "2021-1-1",
            "2021-07-01T25:00Z",
            "2021-07-01T08",
            "nope",
            "2021-07-01T08:30:1x",
        ] {
            assert_eq!(range(bad, utc()), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_valid_day_covers_exactly_one_day(y in 1900i32..2100, m in 1u32..=12, d in 1u32..=28, off in -12i32..=14) {
            let offset = FixedOffset::east_opt(off * 3600).unwrap();
            let r = range(&format!("{y:04}-{m:02}-{d:02}"), offset).unwrap();
            prop_assert_eq!(r.hi - r.lo + 1, 86_400_000);
            let inner = range(&format!("{y:04}-{m:02}-{d:02}T12:00:00"), offset).unwrap();
            prop_assert!(r.lo <= inner.lo && inner.hi <= r.hi);
            let year = range(&format!("{y:04}"), offset).unwrap();
            prop_assert!(year.lo <= r.lo && r.hi <= year.hi);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = range(&s, utc());
        }
    }
}
