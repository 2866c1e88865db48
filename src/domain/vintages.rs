//! Vintages (ALFRED's real-time periods): a series as first released against as latest
//! known, replaying an indicator's versions instant by instant.
//!
//! A *vintage* is an instant at which some versions became known (their `known_from`).
//! The answer for an output period in a vintage is what a report as of that instant
//! computes for it, by the caller's own rules (`compute`: de-cumulation, roll-up,
//! transform), on the figures published at that instant. The first release of a
//! period is its answer in the earliest vintage in which it had one; the latest is its
//! answer in the last vintage.
//!
//! Cost: each vintage recomputes only the output periods its changes can reach (the
//! periods containing the changed figures, the next one for a de-cumulated figure, and
//! one lag further for change transforms), from a slice of the figures starting a year
//! before them. A compound growth rate depends on the first period of the series, so
//! with it every vintage recomputes the whole series: O(vintages × periods).

use std::collections::{BTreeMap, BTreeSet};

use bigdecimal::BigDecimal;

use super::reporting::{Point, Rolled, Transformed};
use super::{Frequency, Period};

/// One version of one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Version<T> {
    /// The period, in the indicator's frequency.
    pub period: Period,
    /// The value; `None` for a missing value or a deletion.
    pub value: Option<BigDecimal>,
    /// True for a tombstone: the observation stops existing.
    pub deleted: bool,
    /// When it became the published version.
    pub known_from: T,
}

/// How far a change of one figure reaches in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// The output frequency.
    pub to: Frequency,
    /// Figures are year-to-date: a change also changes the next period's per-period
    /// value.
    pub year_to_date: bool,
    /// The cumulative view (January to each period): a change also changes every later
    /// period of its year.
    pub to_year_end: bool,
    /// Output periods a transform looks back (0 for levels, 1 for changes on the
    /// previous period, a year's periods for changes on a year earlier); `None` when
    /// any change can change every period (compound growth from the first period).
    pub lag: Option<i64>,
}

/// One output period's answer in one vintage.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The transformed value.
    pub value: Transformed,
    /// Parts with a value.
    pub parts: u32,
    /// Parts the period has.
    pub expected: u32,
}

/// One output period across the vintages.
#[derive(Debug, Clone, PartialEq)]
pub struct VintagePoint<T> {
    /// The output period.
    pub period: Period,
    /// The first release and its vintage, if the period ever had an answer.
    pub first: Option<(Transformed, T)>,
    /// The answer in the last vintage.
    pub latest: Answer,
    /// The last vintage that changed the value (first release, revision, loss).
    pub latest_time: Option<T>,
}

/// The replay's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Vintages<T> {
    /// Output periods that had an answer or parts in some vintage, in period order.
    pub points: Vec<VintagePoint<T>>,
    /// Distinct instants among the versions.
    pub count: usize,
}

/// Replays `versions` (sorted by `known_from`) vintage by vintage. `compute` turns the
/// figures published at an instant (sorted, one frequency) into output periods with
/// their answers, as a report does; `keep` says which output periods are reported.
pub fn replay<T: Copy + Ord>(
    versions: &[Version<T>],
    reach: Reach,
    compute: impl Fn(&[Point]) -> Vec<(Rolled, Transformed)>,
    keep: impl Fn(Period) -> bool,
) -> Vintages<T> {
    // The figures published at the current instant, by start month.
    let mut state: BTreeMap<i64, Point> = BTreeMap::new();
    let mut out: BTreeMap<i64, VintagePoint<T>> = BTreeMap::new();
    let mut count = 0;
    let mut i = 0;
    while i < versions.len() {
        let t = versions[i].known_from;
        let mut j = i;
        // Changed figures' periods, lowest and highest.
        let mut span: Option<(Period, Period)> = None;
        while j < versions.len() && versions[j].known_from == t {
            let v = &versions[j];
            let key = v.period.start_key();
            let before = state.get(&key).map(|p| &p.value);
            let changed = if v.deleted {
                state.remove(&key).is_some()
            } else if before != Some(&v.value) {
                state.insert(
                    key,
                    Point {
                        period: v.period,
                        value: v.value.clone(),
                    },
                );
                true
            } else {
                false
            };
            if changed {
                span = Some(match span {
                    None => (v.period, v.period),
                    Some((lo, hi)) => (
                        if v.period.start_key() < lo.start_key() {
                            v.period
                        } else {
                            lo
                        },
                        if v.period.start_key() > hi.start_key() {
                            v.period
                        } else {
                            hi
                        },
                    ),
                });
            }
            j += 1;
        }
        count += 1;
        i = j;
        let Some((lo, hi)) = span else { continue };
        // The output periods this vintage can change, as start-month bounds.
        let (out_lo, out_hi) = match reach.lag {
            None => (i64::MIN, i64::MAX),
            Some(lag) => {
                let hi = if reach.to_year_end {
                    Period::new(hi.year(), hi.frequency(), hi.frequency().periods_per_year())
                        .unwrap_or(hi)
                } else if reach.year_to_date {
                    hi.offset(1).filter(|n| n.year() == hi.year()).unwrap_or(hi)
                } else {
                    hi
                };
                let lo_out = lo.containing(reach.to);
                let hi_out = hi.containing(reach.to).and_then(|h| h.offset(lag));
                (
                    lo_out.map_or(i64::MIN, |p| p.start_key()),
                    hi_out.map_or(i64::MAX, |p| p.end_key()),
                )
            }
        };
        // Figures from the start of the year before the first of them: enough for
        // de-cumulation, roll-up and a year's lag.
        let slice_lo = if out_lo == i64::MIN {
            i64::MIN
        } else {
            (out_lo.div_euclid(12) - 1) * 12
        };
        let slice: Vec<Point> = state
            .range(slice_lo..=out_hi)
            .map(|(_, p)| p.clone())
            .collect();
        let mut seen: BTreeSet<i64> = BTreeSet::new();
        for (rolled, value) in compute(&slice) {
            let key = rolled.period.start_key();
            if key < out_lo || key > out_hi || !keep(rolled.period) {
                continue;
            }
            seen.insert(key);
            let answer = Answer {
                value,
                parts: rolled.parts,
                expected: rolled.expected,
            };
            update(&mut out, rolled.period, answer, t);
        }
        // Periods in reach that the figures no longer produce (all deleted).
        let gone: Vec<(i64, Period, u32)> = out
            .range(out_lo..=out_hi)
            .filter(|(k, _)| !seen.contains(k))
            .map(|(k, p)| (*k, p.period, p.latest.expected))
            .collect();
        for (_, period, expected) in gone {
            let answer = Answer {
                value: Transformed::Missing,
                parts: 0,
                expected,
            };
            update(&mut out, period, answer, t);
        }
    }
    Vintages {
        points: out.into_values().collect(),
        count,
    }
}

fn update<T: Copy>(out: &mut BTreeMap<i64, VintagePoint<T>>, period: Period, answer: Answer, t: T) {
    let entry = out
        .entry(period.start_key())
        .or_insert_with(|| VintagePoint {
            period,
            first: None,
            latest: Answer {
                value: Transformed::Missing,
                parts: 0,
                expected: answer.expected,
            },
            latest_time: None,
        });
    if entry.latest.value != answer.value {
        entry.latest_time = Some(t);
        if entry.first.is_none() {
            entry.first = Some((answer.value.clone(), t));
        }
    }
    entry.latest = answer;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::indicator::Aggregation;
    use crate::domain::reporting::{Transform, roll_up, transform};

    fn d(s: &str) -> BigDecimal {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    fn v(period: &str, value: Option<&str>, t: u32) -> Version<u32> {
        Version {
            period: p(period),
            value: value.map(d),
            deleted: false,
            known_from: t,
        }
    }

    fn quarterly(points: &[Point], t: Transform) -> Vec<(Rolled, Transformed)> {
        let rolled = roll_up(points, Frequency::Quarterly, Aggregation::Sum);
        let series: Vec<Point> = rolled
            .iter()
            .map(|r| Point {
                period: r.period,
                value: r.value.clone(),
            })
            .collect();
        rolled
            .into_iter()
            .zip(transform(&series, t))
            .map(|(r, (_, x))| (r, x))
            .collect()
    }

    /// Replays with a windowed reach and with a full recomputation every vintage;
    /// both must agree.
    fn both(versions: &[Version<u32>], t: Transform, lag: i64) -> Vintages<u32> {
        let reach = Reach {
            to: Frequency::Quarterly,
            year_to_date: false,
            to_year_end: false,
            lag: Some(lag),
        };
        let windowed = replay(versions, reach, |s| quarterly(s, t), |_| true);
        let full = replay(
            versions,
            Reach { lag: None, ..reach },
            |s| quarterly(s, t),
            |_| true,
        );
        assert_eq!(windowed, full);
        windowed
    }

    #[test]
    fn a_quarter_is_first_released_when_its_last_month_is_known() {
        let versions = vec![
            v("2020-M01", Some("1"), 1),
            v("2020-M02", Some("2"), 1),
            v("2020-M03", Some("3"), 2),
            v("2020-M02", Some("5"), 3),
            v("2020-M04", Some("4"), 3),
        ];
        let out = both(&versions, Transform::Level, 0);
        assert_eq!(out.count, 3);
        let q1 = &out.points[0];
        // First released at t=2: 1 + 2 + 3 = 6; revised at t=3: 1 + 5 + 3 = 9.
        assert_eq!(q1.first, Some((Transformed::Exact(d("6")), 2)));
        assert_eq!(q1.latest.value, Transformed::Exact(d("9")));
        assert_eq!(q1.latest_time, Some(3));
        // Q2 has one month of three: no release yet.
        let q2 = &out.points[1];
        assert_eq!((q2.first.clone(), q2.latest.parts), (None, 1));
    }

    #[test]
    fn year_ago_changes_use_the_figures_of_the_same_vintage_and_deletions_count() {
        let mut versions: Vec<Version<u32>> = (1..=12)
            .map(|m| v(&format!("2019-M{m:02}"), Some("10"), 1))
            .collect();
        versions.extend((1..=3).map(|m| v(&format!("2020-M{m:02}"), Some("11"), 2)));
        // 2019-M01 revised from 10 to 13 at t=3: 2019-Q1 = 33, 2020-Q1 change = 0.
        versions.push(v("2019-M01", Some("13"), 3));
        versions.push(Version {
            deleted: true,
            ..v("2020-M02", None, 4)
        });
        let out = both(&versions, Transform::ChangeYearAgo, 4);
        let q = out
            .points
            .iter()
            .find(|x| x.period == p("2020-Q1"))
            .unwrap();
        // First release at t=2: 33 − 30 = 3 (2019-Q1 = 30 as known then).
        assert_eq!(q.first, Some((Transformed::Exact(d("3")), 2)));
        assert_eq!(q.latest.value, Transformed::Missing);
        assert_eq!(q.latest_time, Some(4));
        assert_eq!(q.latest.parts, 2);
    }

    /// Year-to-date monthly figures released month by month and revised two months
    /// later, with a deletion: the windowed replay equals a full recomputation at every
    /// output frequency and transform.
    #[test]
    fn windowed_replay_equals_full_recomputation_with_year_to_date_figures() {
        use crate::domain::reporting::decumulate;
        let mut versions: Vec<Version<u32>> = Vec::new();
        for i in 0..36u32 {
            let period = Period::new(2018 + (i / 12) as i32, Frequency::Monthly, i % 12 + 1)
                .unwrap()
                .to_string();
            let ytd = (i % 12 + 1) * 10;
            versions.push(v(&period, Some(&ytd.to_string()), 2 * i));
            versions.push(v(&period, Some(&(ytd + i % 3).to_string()), 2 * i + 5));
        }
        versions.push(Version {
            deleted: true,
            ..v("2019-M05", None, 40)
        });
        versions.push(v("2019-M05", Some("49"), 60));
        versions.sort_by_key(|x| x.known_from);
        for (to, aggregation) in [
            (Frequency::Monthly, None),
            (Frequency::Quarterly, Some(Aggregation::Sum)),
            (Frequency::Annual, Some(Aggregation::Sum)),
        ] {
            for (t, lag) in [
                (Transform::Level, 0),
                (Transform::Change, 1),
                (Transform::ChangeYearAgo, i64::from(to.periods_per_year())),
                (
                    Transform::PercentChangeYearAgo,
                    i64::from(to.periods_per_year()),
                ),
            ] {
                let compute = |points: &[Point]| {
                    let per = decumulate(points);
                    let rolled: Vec<Rolled> = match aggregation {
                        None => per
                            .iter()
                            .map(|p| Rolled {
                                period: p.period,
                                value: p.value.clone(),
                                parts: u32::from(p.value.is_some()),
                                expected: 1,
                            })
                            .collect(),
                        Some(a) => roll_up(&per, to, a),
                    };
                    let series: Vec<Point> = rolled
                        .iter()
                        .map(|r| Point {
                            period: r.period,
                            value: r.value.clone(),
                        })
                        .collect();
                    rolled
                        .into_iter()
                        .zip(transform(&series, t))
                        .map(|(r, (_, x))| (r, x))
                        .collect::<Vec<_>>()
                };
                let reach = Reach {
                    to,
                    year_to_date: true,
                    to_year_end: false,
                    lag: Some(lag),
                };
                let windowed = replay(&versions, reach, compute, |_| true);
                let full = replay(&versions, Reach { lag: None, ..reach }, compute, |_| true);
                assert_eq!(windowed, full, "{to:?} {t:?}");
                assert_eq!(windowed.count, 72);
            }
        }
    }
}
