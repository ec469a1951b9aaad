//! Retention by calendar, the way restic's `forget` documents and implements it: which backups a
//! policy keeps (and by which rules) and which it removes. Pure: it never touches a backup.
//!
//! - `last n`: the n newest backups.
//! - `hourly/daily/weekly/monthly/yearly n`: for the n newest hours (days, ISO weeks starting on
//!   Monday, months, years) that hold a backup, the newest backup of each. Buckets follow the
//!   calendar of the chosen time zone, not the time the policy runs.
//! - `within d`: every backup made within `d` (years, months, days, hours: `2y5m7d3h`) of the
//!   newest backup, counted back on the calendar as restic does (Go's `AddDate`: March 31 less
//!   one month is March 3, not February 28).
//! - A backup kept by any rule is kept. A rule that still has buckets left when it reaches the
//!   oldest backup keeps that one too ("oldest daily"), even when it shares a bucket with a newer
//!   one; `unlimited` rules always do.
//! - Beyond restic: backups dated in the future are kept and left out of every rule (a clock that
//!   ran ahead must not use up the buckets of real backups), so are backups whose date cannot be
//!   read, and the newest backup is never removed. A policy whose every rule is off or zero is
//!   refused, as restic refuses it.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// How many of a rule's buckets to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    #[default]
    Off,
    Keep(u32),
    Unlimited,
}

impl Count {
    /// Whether the rule keeps anything at all (`Keep(0)` is restic's "off").
    fn is_on(self) -> bool {
        !matches!(self, Count::Off | Count::Keep(0))
    }
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

impl Policy {
    /// Whether no rule keeps anything: restic refuses to act on such a policy, and so do we.
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        !counts.iter().any(|c| c.is_on()) && self.within.is_none_or(|span| span.is_zero())
    }
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

    fn is_zero(self) -> bool {
        self == Span::default()
    }

    /// `at` moved back by this span the way restic does it: Go's `AddDate(-y, -m, -d)` in the
    /// backup's own UTC offset (a day of month past the month's end rolls over into the next
    /// month), then the hours.
    fn before(self, at: DateTime<FixedOffset>) -> DateTime<Utc> {
        let wall = at.naive_local();
        let months = i64::from(wall.year()) * 12 + i64::from(wall.month0())
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let first = i32::try_from(months.div_euclid(12))
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, months.rem_euclid(12) as u32 + 1, 1));
        let offset_days = i64::from(wall.day()) - 1 - i64::from(self.days);
        let moved = first
            .and_then(|first| first.checked_add_signed(TimeDelta::days(offset_days)))
            .map(|date| date.and_time(wall.time()))
            .and_then(|wall| at.offset().from_local_datetime(&wall).single());
        match moved {
            Some(moved) => moved.with_timezone(&Utc) - TimeDelta::hours(i64::from(self.hours)),
            // Beyond the calendar: every backup is within the span.
            None => DateTime::<Utc>::MIN_UTC,
        }
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

/// A counting rule's bucket of the `index`th newest backup at wall-clock time `wall`.
type Bucket = fn(usize, NaiveDateTime) -> (i64, u32, u32, u32);

/// restic's counting rules, in its order: `last` (every backup its own bucket), then the calendar.
const RULES: [(&str, Bucket); 6] = [
    ("last", |index, _| (index as i64, 0, 0, 0)),
    ("hourly", |_, t| {
        (t.year().into(), t.month(), t.day(), t.hour())
    }),
    ("daily", |_, t| (t.year().into(), t.month(), t.day(), 0)),
    ("weekly", |_, t| {
        let week = t.iso_week();
        (week.year().into(), week.week(), 0, 0)
    }),
    ("monthly", |_, t| (t.year().into(), t.month(), 0, 0)),
    ("yearly", |_, t| (t.year().into(), 0, 0, 0)),
];

fn parse_date(date: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(date).ok()
}

/// Which of `items` `policy` keeps and which it removes, at `now` in `zone`.
pub fn plan(
    items: &[Item],
    policy: &Policy,
    now: DateTime<Utc>,
    zone: Zone,
) -> Result<Plan, PruneError> {
    if policy.is_empty() {
        return Err(PruneError::EmptyPolicy);
    }
    let mut dated: Vec<(Item, Option<DateTime<FixedOffset>>)> = items
        .iter()
        .map(|item| (item.clone(), parse_date(&item.date)))
        .collect();
    // Newest first; undated ones last (they are kept, whatever their place).
    dated.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.slug.cmp(&a.0.slug)));
    let counted = |at: &Option<DateTime<FixedOffset>>| at.is_some_and(|at| at <= now);
    let newest = dated.iter().position(|(_, at)| counted(at));
    let oldest = dated.iter().rposition(|(_, at)| counted(at));
    let within = policy.within.filter(|span| !span.is_zero());
    let within_from = match (within, newest.and_then(|i| dated[i].1)) {
        (Some(span), Some(latest)) => Some(span.before(latest)),
        _ => None,
    };
    let mut left = [
        policy.last,
        policy.hourly,
        policy.daily,
        policy.weekly,
        policy.monthly,
        policy.yearly,
    ];
    let mut previous: [Option<(i64, u32, u32, u32)>; 6] = [None; 6];
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); dated.len()];
    for (i, (_, at)) in dated.iter().enumerate() {
        let Some(at) = *at else {
            reasons[i].push("undated".into());
            continue;
        };
        if at > now {
            reasons[i].push("in the future".into());
            continue;
        }
        let why = &mut reasons[i];
        if let (Some(from), Some(span)) = (within_from, within) {
            if at > from {
                why.push(format!("within {span}"));
            }
        }
        let wall = zone.local(at.with_timezone(&Utc));
        for (rule, ((name, bucket), left)) in RULES.iter().zip(left.iter_mut()).enumerate() {
            if !left.is_on() {
                continue;
            }
            let value = bucket(i, wall);
            if previous[rule] != Some(value) {
                previous[rule] = Some(value);
                if let Count::Keep(n) = left {
                    *n -= 1;
                }
                why.push((*name).into());
            } else if Some(i) == oldest {
                why.push(format!("oldest {name}"));
            }
        }
        if why.is_empty() && Some(i) == newest {
            why.push("newest".into());
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
        parse_date("2030-01-01T00:00:00+00:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn reasons<'a>(plan: &'a Plan, slug: &str) -> Option<Vec<&'a str>> {
        plan.keep
            .iter()
            .find(|k| k.item.slug == slug)
            .map(|k| k.reasons.iter().map(String::as_str).collect())
    }

    fn removed(plan: &Plan) -> Vec<&str> {
        plan.remove.iter().map(|i| i.slug.as_str()).collect()
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
        // Exactly restic's output: each kept as a "daily snapshot", the first eight removed.
        assert!(plan.keep.iter().all(|k| k.reasons == ["daily"]));
        assert_eq!(
            removed(&plan),
            [
                "e1a7b58b", "b9553125", "5d33b116", "8cf1cb9a", "eb430a5d", "f6b1f037", "46cfe4d5",
                "0a1f9759"
            ]
        );
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
        let why = |slug: &str| reasons(&plan, slug).unwrap();
        assert_eq!(
            why("h3"),
            [
                "within 1h",
                "last",
                "hourly",
                "daily",
                "weekly",
                "monthly",
                "yearly"
            ]
        );
        assert_eq!(why("h2"), ["within 1h", "last"]);
        assert_eq!(why("h1"), ["within 1h", "hourly"]);
        assert_eq!(why("d1"), ["daily", "weekly"]);
        assert_eq!(why("w1"), ["weekly"]);
        assert_eq!(why("m1"), ["monthly"]);
        assert_eq!(why("y1"), ["monthly", "yearly"]);
        assert_eq!(why("y0"), ["yearly"]);
        // The yearly rule has a bucket left at the oldest backup, which shares y0's year.
        assert_eq!(why("y00"), ["oldest yearly"]);
        assert_eq!(removed(&plan), ["d0", "m0"]);
    }

    /// restic's documentation today: weekday backups, two on Fridays, none last Wednesday;
    /// `forget --keep-daily 5`. (Its output names the 23:00 Friday backup 8a603ddf, the ID of
    /// the 11:00 one it removes; the time tells which it keeps.)
    #[test]
    fn restic_weekdays_keep_daily_five() {
        let list = items(&[
            ("60e5c031", "2025-04-21T11:00:00+00:00"),
            ("1dccffe9", "2025-04-22T11:00:00+00:00"),
            ("90a5c949", "2025-04-23T11:00:00+00:00"),
            ("79580708", "2025-04-24T11:00:00+00:00"),
            ("8a603ddf", "2025-04-25T11:00:00+00:00"),
            ("ae33bf10", "2025-04-25T23:00:00+00:00"),
            ("fb8b1418", "2025-04-28T11:00:00+00:00"),
            ("1db188b4", "2025-04-29T11:00:00+00:00"),
            ("7baa4f28", "2025-05-01T11:00:00+00:00"),
            ("05c48af3", "2025-05-02T11:00:00+00:00"),
            ("ad72e262", "2025-05-02T23:00:00+00:00"),
        ]);
        let policy = Policy {
            daily: Count::Keep(5),
            ..Policy::default()
        };
        let plan = plan(&list, &policy, now(), utc()).unwrap();
        assert_eq!(
            kept(&plan),
            ["ad72e262", "7baa4f28", "1db188b4", "fb8b1418", "ae33bf10"]
        );
        assert!(plan.keep.iter().all(|k| k.reasons == ["daily"]));
        assert_eq!(
            removed(&plan),
            ["05c48af3", "8a603ddf", "79580708", "90a5c949", "1dccffe9", "60e5c031"]
        );
    }

    #[test]
    fn the_oldest_backup_as_restic_keeps_it() {
        let list = items(&[
            ("b", "2029-06-02T10:00:00+00:00"),
            ("a", "2029-06-02T09:00:00+00:00"),
        ]);
        // Buckets left at the oldest backup, which shares the newer one's day: kept as oldest,
        // also by an unlimited rule.
        for daily in [Count::Keep(5), Count::Unlimited] {
            let policy = Policy {
                daily,
                ..Policy::default()
            };
            let plan = plan(&list, &policy, now(), utc()).unwrap();
            assert_eq!(reasons(&plan, "a").unwrap(), ["oldest daily"]);
        }
        // A backup with a bucket of its own is kept by the rule itself, not as "oldest" too.
        let apart = items(&[
            ("b", "2029-06-03T10:00:00+00:00"),
            ("a", "2029-06-02T09:00:00+00:00"),
        ]);
        let policy = Policy {
            daily: Count::Keep(5),
            ..Policy::default()
        };
        let plan = plan(&apart, &policy, now(), utc()).unwrap();
        assert_eq!(reasons(&plan, "a").unwrap(), ["daily"]);
        // No bucket left: the oldest goes.
        let policy = Policy {
            daily: Count::Keep(1),
            ..Policy::default()
        };
        assert_eq!(
            removed(&super::plan(&list, &policy, now(), utc()).unwrap()),
            ["a"]
        );
    }

    #[test]
    fn within_counts_back_like_go() {
        // 2025-03-31 less one month is "February 31", which Go (and so restic) rolls over to
        // March 3; 2024 was a leap year: March 2.
        for (latest, inside, outside) in [
            (
                "2025-03-31T12:00:00+02:00",
                "2025-03-03T12:00:01+02:00",
                "2025-03-03T12:00:00+02:00",
            ),
            (
                "2024-03-31T12:00:00+00:00",
                "2024-03-02T12:00:01+00:00",
                "2024-03-02T11:00:00+00:00",
            ),
        ] {
            let list = items(&[("new", latest), ("in", inside), ("out", outside)]);
            let policy = Policy {
                within: Some(Span::parse("1m").unwrap()),
                ..Policy::default()
            };
            let plan = plan(&list, &policy, now(), utc()).unwrap();
            assert_eq!(reasons(&plan, "in").unwrap(), ["within 1m"], "{latest}");
            assert_eq!(removed(&plan), ["out"], "{latest}");
        }
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
        // Off, zero and a zero span are all "no rule", as in restic.
        for empty in [
            Policy::default(),
            Policy {
                last: Count::Keep(0),
                daily: Count::Keep(0),
                within: Some(Span::parse("0d").unwrap()),
                ..Policy::default()
            },
        ] {
            assert_eq!(
                super::plan(&list, &empty, now(), utc()),
                Err(PruneError::EmptyPolicy)
            );
        }
        assert!(Span::parse("1w").is_err());
        assert_eq!(Span::parse("2y5m7d3h").unwrap().to_string(), "2y5m7d3h");
        assert!(Zone::parse(Some("Mars/Olympus")).is_err());
    }
}
