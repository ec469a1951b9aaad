//! Retention by calendar, the way restic's `forget` documents it: which backups a policy keeps
//! (and by which rules) and which it removes. Pure: it never touches a backup.
//!
//! - `last n`: the n newest backups.
//! - `hourly/daily/weekly/monthly/yearly n`: for the n newest hours (days, ISO weeks starting on
//!   Monday, months, years) that hold a backup, the newest backup of each. Buckets follow the
//!   calendar of the chosen time zone, not the time the policy runs.
//! - `within d`: every backup made within `d` (years, months, days, hours: `2y5m7d3h`) of the
//!   newest backup.
//! - A backup kept by any rule is kept. When a calendar rule finds fewer buckets than it may keep,
//!   the oldest backup is kept as well ("oldest daily"). Backups dated in the future are kept and
//!   left out of every rule; so are backups whose date cannot be read. The newest backup is never
//!   removed.

use chrono::{DateTime, Datelike, Months, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// How many of a rule's buckets to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    #[default]
    Off,
    Keep(u32),
    Unlimited,
}

/// `2y5m7d3h`: a span on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: Count,
    pub hourly: Count,
    pub daily: Count,
    pub weekly: Count,
    pub monthly: Count,
    pub yearly: Count,
    pub within: Option<Span>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PruneError {
    #[error("a retention policy needs at least one keep rule")]
    EmptyPolicy,
    #[error("{0:?} is not a duration (numbers with y, m, d or h, as in 2y5m7d3h)")]
    BadSpan(String),
    #[error("{0:?} is not a time zone (an IANA name such as Europe/Berlin, UTC or local)")]
    BadZone(String),
}

/// The calendar buckets are counted in.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    Local,
    Named(Tz),
}

impl Zone {
    /// `None` or `"local"`: this machine's zone; else an IANA name (`UTC`, `Europe/Berlin`).
    pub fn parse(name: Option<&str>) -> Result<Zone, PruneError> {
        match name.map(str::trim) {
            None | Some("") | Some("local") => Ok(Zone::Local),
            Some(name) => name
                .parse::<Tz>()
                .map(Zone::Named)
                .map_err(|_| PruneError::BadZone(name.to_string())),
        }
    }

    /// The wall-clock time of `at` in this zone.
    fn local(self, at: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Local => at.with_timezone(&chrono::Local).naive_local(),
            Zone::Named(tz) => tz.from_utc_datetime(&at.naive_utc()).naive_local(),
        }
    }
}

impl Span {
    /// Parses `2y5m7d3h` (any of the four parts, in that order).
    pub fn parse(text: &str) -> Result<Span, PruneError> {
        let bad = || PruneError::BadSpan(text.to_string());
        let mut span = Span::default();
        let mut digits = String::new();
        let mut seen_any = false;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            match c {
                'y' => span.years = n,
                'm' => span.months = n,
                'd' => span.days = n,
                'h' => span.hours = n,
                _ => return Err(bad()),
            }
            seen_any = true;
        }
        if !digits.is_empty() || !seen_any {
            return Err(bad());
        }
        Ok(span)
    }

    /// `at` moved back by this span on the calendar (months and years keep the day of month
    /// where it exists).
    fn before(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let months = self.years.saturating_mul(12).saturating_add(self.months);
        let moved = at.checked_sub_months(Months::new(months)).unwrap_or(at);
        moved
            - chrono::Duration::days(i64::from(self.days))
            - chrono::Duration::hours(i64::from(self.hours))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// One backup as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub slug: String,
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub item: Item,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Newest first.
    pub keep: Vec<Kept>,
    /// Newest first.
    pub remove: Vec<Item>,
}

/// The calendar rules, each with its bucket of a wall-clock time.
type Bucket = fn(NaiveDateTime) -> (i32, u32, u32, u32);

const CALENDAR: [(&str, Bucket); 5] = [
    ("hourly", |t| (t.year(), t.month(), t.day(), t.hour())),
    ("daily", |t| (t.year(), t.month(), t.day(), 0)),
    ("weekly", |t| {
        let week = t.iso_week();
        (week.year(), week.week(), 0, 0)
    }),
    ("monthly", |t| (t.year(), t.month(), 0, 0)),
    ("yearly", |t| (t.year(), 0, 0, 0)),
];

fn parse_date(date: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(date)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Which of `items` `policy` keeps and which it removes, at `now` in `zone`.
pub fn plan(
    items: &[Item],
    policy: &Policy,
    now: DateTime<Utc>,
    zone: Zone,
) -> Result<Plan, PruneError> {
    let counts = [
        policy.hourly,
        policy.daily,
        policy.weekly,
        policy.monthly,
        policy.yearly,
    ];
    if policy.last == Count::Off
        && counts.iter().all(|c| *c == Count::Off)
        && policy.within.is_none()
    {
        return Err(PruneError::EmptyPolicy);
    }
    let mut dated: Vec<(Item, Option<DateTime<Utc>>)> = items
        .iter()
        .map(|item| (item.clone(), parse_date(&item.date)))
        .collect();
    // Newest first; undated ones last (they are kept, whatever their place).
    dated.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.slug.cmp(&a.0.slug)));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); dated.len()];
    let newest = dated
        .iter()
        .position(|(_, at)| at.is_some_and(|at| at <= now));
    let within_from = match (policy.within, newest) {
        (Some(span), Some(i)) => dated[i].1.map(|latest| span.before(latest)),
        _ => None,
    };
    let mut last_left = policy.last;
    let mut left = counts;
    let mut previous: [Option<(i32, u32, u32, u32)>; 5] = [None; 5];
    for (i, (_, at)) in dated.iter().enumerate() {
        let Some(at) = *at else {
            reasons[i].push("undated".into());
            continue;
        };
        if at > now {
            reasons[i].push("in the future".into());
            continue;
        }
        if Some(i) == newest {
            reasons[i].push("newest".into());
        }
        if take(&mut last_left) {
            reasons[i].push("last".into());
        }
        let wall = zone.local(at);
        for (rule, ((name, bucket), left)) in CALENDAR.iter().zip(left.iter_mut()).enumerate() {
            let value = bucket(wall);
            if *left != Count::Off && previous[rule] != Some(value) && take(left) {
                previous[rule] = Some(value);
                reasons[i].push((*name).into());
            }
        }
        if let (Some(from), Some(span)) = (within_from, policy.within) {
            if at > from {
                reasons[i].push(format!("within {span}"));
            }
        }
    }
    // A rule that found fewer buckets than it may keep also keeps the oldest backup.
    if let Some(oldest) = dated
        .iter()
        .rposition(|(_, at)| at.is_some_and(|at| at <= now))
    {
        for ((name, _), left) in CALENDAR.iter().zip(left) {
            if matches!(left, Count::Keep(n) if n > 0) {
                reasons[oldest].push(format!("oldest {name}"));
            }
        }
    }
    let mut result = Plan::default();
    for ((item, _), why) in dated.into_iter().zip(reasons) {
        if why.is_empty() {
            result.remove.push(item);
        } else {
            result.keep.push(Kept { item, reasons: why });
        }
    }
    Ok(result)
}

/// Counts one bucket off a rule; false once it has none left.
fn take(count: &mut Count) -> bool {
    match count {
        Count::Off => false,
        Count::Unlimited => true,
        Count::Keep(0) => false,
        Count::Keep(n) => {
            *n -= 1;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(dates: &[(&str, &str)]) -> Vec<Item> {
        dates
            .iter()
            .map(|(slug, date)| Item {
                slug: (*slug).into(),
                date: (*date).into(),
            })
            .collect()
    }

    fn kept(plan: &Plan) -> Vec<&str> {
        plan.keep.iter().map(|k| k.item.slug.as_str()).collect()
    }

    fn utc() -> Zone {
        Zone::parse(Some("UTC")).unwrap()
    }

    fn now() -> DateTime<Utc> {
        parse_date("2030-01-01T00:00:00+00:00").unwrap()
    }

    /// restic's documentation: one backup every Sunday for 12 weeks, `--keep-daily 4`.
    #[test]
    fn restic_twelve_sundays_keep_daily_four() {
        let sundays = items(&[
            ("0a1f9759", "2019-09-01T11:00:00+00:00"),
            ("46cfe4d5", "2019-09-08T11:00:00+00:00"),
            ("f6b1f037", "2019-09-15T11:00:00+00:00"),
            ("eb430a5d", "2019-09-22T11:00:00+00:00"),
            ("8cf1cb9a", "2019-09-29T11:00:00+00:00"),
            ("5d33b116", "2019-10-06T11:00:00+00:00"),
            ("b9553125", "2019-10-13T11:00:00+00:00"),
            ("e1a7b58b", "2019-10-20T11:00:00+00:00"),
            ("8f8018c0", "2019-10-27T11:00:00+00:00"),
            ("59403279", "2019-11-03T11:00:00+00:00"),
            ("dfee9fb4", "2019-11-10T11:00:00+00:00"),
            ("e1ae2f40", "2019-11-17T11:00:00+00:00"),
        ]);
        let policy = Policy {
            daily: Count::Keep(4),
            ..Policy::default()
        };
        let plan = plan(&sundays, &policy, now(), utc()).unwrap();
        assert_eq!(
            kept(&plan),
            ["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"]
        );
        assert_eq!(plan.remove.len(), 8);
        assert_eq!(plan.keep[1].reasons, ["daily"]);
    }

    #[test]
    fn every_rule_matters() {
        // Several a day in the last days, then daily, then monthly, then one a year.
        let list = items(&[
            ("h3", "2029-12-31T22:30:00+00:00"),
            ("h2", "2029-12-31T22:10:00+00:00"),
            ("h1", "2029-12-31T21:50:00+00:00"),
            ("d1", "2029-12-30T08:00:00+00:00"),
            ("d0", "2029-12-30T07:00:00+00:00"),
            ("w1", "2029-12-19T08:00:00+00:00"),
            ("m1", "2029-10-03T08:00:00+00:00"),
            ("m0", "2029-10-01T08:00:00+00:00"),
            ("y1", "2027-05-05T08:00:00+00:00"),
            ("y0", "2026-05-05T08:00:00+00:00"),
            ("y00", "2026-01-05T08:00:00+00:00"),
        ]);
        let policy = Policy {
            last: Count::Keep(2),
            hourly: Count::Keep(2),
            daily: Count::Keep(2),
            weekly: Count::Keep(3),
            monthly: Count::Keep(3),
            yearly: Count::Keep(4),
            within: Some(Span::parse("1h").unwrap()),
        };
        let plan = plan(&list, &policy, now(), utc()).unwrap();
        let reasons = |slug: &str| {
            plan.keep
                .iter()
                .find(|k| k.item.slug == slug)
                .map(|k| k.reasons.clone())
        };
        assert_eq!(
            reasons("h3").unwrap(),
            [
                "newest",
                "last",
                "hourly",
                "daily",
                "weekly",
                "monthly",
                "yearly",
                "within 1h"
            ]
        );
        assert_eq!(reasons("h2").unwrap(), ["last", "within 1h"]);
        assert_eq!(reasons("h1").unwrap(), ["hourly", "within 1h"]);
        assert_eq!(reasons("d1").unwrap(), ["daily", "weekly"]);
        assert_eq!(reasons("w1").unwrap(), ["weekly"]);
        assert_eq!(reasons("m1").unwrap(), ["monthly"]);
        assert_eq!(reasons("y1").unwrap(), ["monthly", "yearly"]);
        assert_eq!(reasons("y0").unwrap(), ["yearly"]);
        // The yearly rule found three of four buckets: the oldest backup is kept too.
        assert_eq!(reasons("y00").unwrap(), ["oldest yearly"]);
        assert_eq!(
            plan.remove
                .iter()
                .map(|i| i.slug.as_str())
                .collect::<Vec<_>>(),
            ["d0", "m0"]
        );
    }

    #[test]
    fn buckets_follow_the_time_zone() {
        // 23:30 UTC on the 1st and 00:30 UTC on the 2nd: the same day in New York.
        let list = items(&[
            ("b", "2029-06-02T00:30:00+00:00"),
            ("a", "2029-06-01T23:30:00+00:00"),
        ]);
        let policy = Policy {
            daily: Count::Keep(5),
            ..Policy::default()
        };
        let in_utc = plan(&list, &policy, now(), utc()).unwrap();
        assert_eq!(in_utc.remove, []);
        let ny = Zone::parse(Some("America/New_York")).unwrap();
        let in_ny = plan(&list, &policy, now(), ny).unwrap();
        // One bucket of five: "b" by the daily rule, "a" as the oldest.
        assert_eq!(in_ny.keep[1].reasons, ["oldest daily"]);
    }

    #[test]
    fn future_undated_and_empty_policies() {
        let list = items(&[
            ("future", "2031-01-01T00:00:00+00:00"),
            ("bad", "yesterday"),
            ("new", "2029-01-02T00:00:00+00:00"),
            ("old", "2029-01-01T00:00:00+00:00"),
        ]);
        let policy = Policy {
            last: Count::Keep(1),
            ..Policy::default()
        };
        let plan = plan(&list, &policy, now(), utc()).unwrap();
        assert_eq!(kept(&plan), ["future", "new", "bad"]);
        assert_eq!(plan.remove[0].slug, "old");
        assert_eq!(
            super::plan(&list, &Policy::default(), now(), utc()),
            Err(PruneError::EmptyPolicy)
        );
        assert!(Span::parse("1w").is_err());
        assert_eq!(Span::parse("2y5m7d3h").unwrap().to_string(), "2y5m7d3h");
        assert!(Zone::parse(Some("Mars/Olympus")).is_err());
    }
}
