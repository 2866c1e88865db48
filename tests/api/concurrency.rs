//! The guarantees of the observation write path under concurrency (docs/consistency.md),
//! checked the way clients see them: two replicas on one database feeding a watcher that
//! hops between them, as-of reads of the last milliseconds while a large import merges,
//! delta sync from `read_time`, writers of different indicators that never meet (in the
//! database or in the service), a write that commits answering its result, TCP_NODELAY
//! on database sockets, an outage over TCP, and change-feed cursors of the old format.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use pb::observation::Status as S;
use pb::observation_change::Kind;
use rand::{Rng as _, SeedableRng as _};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tradewatch::domain::access::Role;
use tradewatch::embedded_pg::{DEFAULT_DATABASE, EmbeddedPostgres};
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::program_service_client::ProgramServiceClient;
use tradewatch::store;

use crate::helpers::{
    Ch, authed, create_key, indicator, micros, obs, program, raw_channel, serve_pool, spawn_app,
    tcp_admin, test_options,
};

type Observations = ObservationServiceClient<Ch>;

/// `indicators/{indicator}/observations/{period}`.
fn name(indicator: &str, period: &str) -> String {
    format!("indicators/{indicator}/observations/{period}")
}

/// `message` with a client deadline of `timeout` (sent as `grpc-timeout`).
fn within<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(timeout);
    r
}

/// BatchCreateObservations of `rows` with a client deadline.
async fn batch(
    client: &mut Observations,
    rows: Vec<pb::Observation>,
    timeout: Duration,
) -> Result<pb::BatchCreateObservationsResponse, tonic::Status> {
    client
        .batch_create_observations(within(
            pb::BatchCreateObservationsRequest {
                request_id: String::new(),
                observations: rows,
                validate_only: false,
            },
            timeout,
        ))
        .await
        .map(|r| r.into_inner())
}

/// One stored version: (name, known_from in µs, value, deleted, current).
type Stored = (String, i64, String, bool, bool);

/// Every version in the database, read behind the API's back, by observation and then
/// `known_from` (a deletion's value is empty, as the API shows it).
async fn stored_versions(pool: &PgPool) -> Vec<Stored> {
    type Row = (String, String, DateTime<Utc>, Option<String>, bool, bool);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT i.indicator_id::text, v.period::text, v.known_from, v.value::text, v.deleted, \
                v.known_until IS NULL \
           FROM observation_versions v JOIN indicators i USING (indicator_key) \
          ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .expect("read the versions");
    rows.into_iter()
        .map(|(i, p, t, v, d, c)| {
            (
                name(&i, &p),
                t.timestamp_micros(),
                v.unwrap_or_default(),
                d,
                c,
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The change feed across replicas

/// The watcher drops its stream and resumes from its last cursor on the other replica
/// after this many messages, or this long without one.
const HOP_AFTER: usize = 3;
const HOP_IDLE: Duration = Duration::from_millis(250);
/// How long the watcher may take to catch up once the writers are done.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Follows WatchObservations from the beginning, hopping between the two replicas (see
/// [`HOP_AFTER`]), until it has received `target` changes (sent once the writers are
/// done) and nothing more comes for a moment, or [`CATCH_UP`] has passed since. Returns the changes in the order received
/// and, for each hop, how many it had then and whether the writers were still writing.
async fn follow(
    replicas: [Observations; 2],
    mut target: tokio::sync::watch::Receiver<Option<usize>>,
) -> (Vec<pb::ObservationChange>, Vec<(usize, bool)>) {
    let mut seen: Vec<pb::ObservationChange> = Vec::new();
    let mut cursor = String::new();
    let mut hops = Vec::new();
    let mut on = 0;
    let mut given_up_at: Option<Instant> = None;
    loop {
        let request = if cursor.is_empty() {
            pb::WatchObservationsRequest {
                from_beginning: true,
                ..Default::default()
            }
        } else {
            pb::WatchObservationsRequest {
                start_cursor: cursor.clone(),
                ..Default::default()
            }
        };
        let mut feed = replicas[on]
            .clone()
            .watch_observations(request)
            .await
            .unwrap_or_else(|e| panic!("WatchObservations on replica {on}: {e:?}"))
            .into_inner();
        let mut messages = 0;
        while messages < HOP_AFTER {
            let wanted = *target.borrow();
            if wanted.is_some() {
                let since = *given_up_at.get_or_insert_with(|| Instant::now() + CATCH_UP);
                if Instant::now() > since {
                    // What is still missing then will not come: the checks say what.
                    return (seen, hops);
                }
            }
            if wanted.is_some_and(|n| seen.len() >= n) {
                // Caught up: anything that still comes is a change delivered twice.
                match tokio::time::timeout(Duration::from_millis(300), feed.message()).await {
                    Err(_) => return (seen, hops),
                    Ok(m) => {
                        let m = m.expect("the feed does not fail").expect("stays open");
                        seen.extend(m.changes);
                        cursor = m.cursor;
                        continue;
                    }
                }
            }
            tokio::select! {
                m = feed.message() => {
                    let m = m
                        .unwrap_or_else(|e| panic!("the feed of replica {on} failed: {e:?}"))
                        .expect("the feed stays open");
                    assert!(!m.cursor.is_empty(), "every message carries a cursor");
                    seen.extend(m.changes);
                    cursor = m.cursor;
                    messages += 1;
                }
                () = tokio::time::sleep(HOP_IDLE) => break,
                _ = target.changed() => {}
            }
        }
        // The client goes away mid-stream and comes back on the other replica.
        drop(feed);
        hops.push((seen.len(), target.borrow().is_none()));
        on = 1 - on;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_feed_every_change_exactly_once_in_per_observation_order() {
    const WRITERS: usize = 6;
    const WRITES: usize = 30;
    /// Rows per write: writers 0 and 3 write large batches, whose versions stay in
    /// flight for a while after they are stamped; the others write small ones, which
    /// can stamp later and commit earlier (where a change could slip behind the feed's
    /// position).
    fn rows_of(w: usize) -> usize {
        if w.is_multiple_of(3) { 40 } else { 3 }
    }
    let mut app = spawn_app().await;
    let replica = app.replica().await;
    // 6 monthly indicators x 120 months. Each write picks one indicator and some of its
    // months: writers of different indicators run side by side in the database, and
    // writers of the same one keep revising the same observations.
    let indicators: Vec<String> = (0..6).map(|i| format!("cc-region-{i}")).collect();
    for id in &indicators {
        app.create_indicator_with(id, pb::Frequency::Monthly, 4)
            .await;
    }
    let names: Vec<Vec<String>> = indicators
        .iter()
        .map(|i| {
            (0..120)
                .map(|m| name(i, &format!("{}-M{:02}", 2000 + m / 12, m % 12 + 1)))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let (target_tx, target_rx) = tokio::sync::watch::channel(None);
    let watcher = tokio::spawn(follow(
        [app.observations.clone(), replica.observations.clone()],
        target_rx,
    ));

    // Writers 0, 2, 4 call replica A, 1, 3, 5 replica B. Each value is unique
    // ((writer * 1000 + write) * 100 + row), so every row of every write is a change; each
    // writer also deletes one observation halfway (NOT_FOUND when it is already gone).
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut client = if w % 2 == 0 {
            app.observations.clone()
        } else {
            replica.observations.clone()
        };
        let names = names.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let mut acknowledged = Vec::new();
            for k in 0..WRITES {
                let of = &names[rng.random_range(0..names.len())];
                if k == WRITES / 2 {
                    let victim = of[rng.random_range(0..of.len())].clone();
                    match client
                        .delete_observation(pb::DeleteObservationRequest { name: victim })
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.code() == Code::NotFound => {}
                        Err(e) => panic!("writer {w}: DeleteObservation: {e:?}"),
                    }
                }
                let rows: Vec<pb::Observation> =
                    rand::seq::index::sample(&mut rng, of.len(), rows_of(w))
                        .iter()
                        .enumerate()
                        .map(|(r, i)| {
                            let value = ((w * 1000 + k) * 100 + r).to_string();
                            obs(&of[i], &value, S::Normal)
                        })
                        .collect();
                let written = batch(&mut client, rows, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|e| panic!("writer {w}, write {k}: {e:?}"));
                assert_eq!(written.inserted + written.revised, rows_of(w) as i64);
                for o in written.observations {
                    acknowledged.push((o.name, micros(&o.known_from), o.value));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.expect("writer"));
    }
    let writers_done = started.elapsed();

    let stored = stored_versions(&app.pool).await;
    // 2 x 30 x 40 + 4 x 30 x 3 = 2,760 versions written, plus up to 6 deletions.
    let written: usize = (0..WRITERS).map(|w| WRITES * rows_of(w)).sum();
    assert_eq!(written, 2_760);
    assert!(
        (written..=written + WRITERS).contains(&stored.len()),
        "{}",
        stored.len()
    );
    target_tx
        .send(Some(stored.len()))
        .expect("the watcher listens");
    let (delivered, hops) = tokio::time::timeout(CATCH_UP * 2, watcher)
        .await
        .expect("the watcher ends")
        .expect("the watcher");
    let live = hops.iter().filter(|h| h.1).count();
    println!(
        "writers done after {writers_done:?}, watcher caught up after {:?}; {} versions; \
         {} hops, {live} of them while the writers wrote",
        started.elapsed(),
        stored.len(),
        hops.len()
    );
    // The watcher resumed on B, and back on A, and so on, while the writers wrote.
    assert!(live >= 2, "hops (changes seen, writers writing): {hops:?}");

    // Exactly once: no (observation, known_from) twice, and every stored version.
    let key = |c: &pb::ObservationChange| {
        let o = c
            .observation
            .as_ref()
            .expect("a change carries its version");
        (o.name.clone(), micros(&o.known_from))
    };
    let mut times: HashMap<(String, i64), usize> = HashMap::new();
    for c in &delivered {
        *times.entry(key(c)).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let delivered_keys: HashSet<(String, i64)> = times.into_keys().collect();
    let stored_keys: HashSet<(String, i64)> = stored.iter().map(|s| (s.0.clone(), s.1)).collect();
    let missing: Vec<_> = stored_keys.difference(&delivered_keys).collect();
    let unknown: Vec<_> = delivered_keys.difference(&stored_keys).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert!(unknown.is_empty(), "delivered but not stored: {unknown:?}");

    // The feed is in the order the changes became known, across hops.
    let instants: Vec<i64> = delivered.iter().map(|c| key(c).1).collect();
    assert!(
        instants.windows(2).all(|w| w[0] <= w[1]),
        "the feed went back in time"
    );

    // Per observation: the changes as delivered are its history, in order (strictly
    // increasing known_from), with the stored values; the kinds follow from it; the
    // last one is the current version.
    let mut history: BTreeMap<String, Vec<(i64, String, bool)>> = BTreeMap::new();
    let mut current: HashMap<String, i64> = HashMap::new();
    for (n, t, v, d, c) in &stored {
        history
            .entry(n.clone())
            .or_default()
            .push((*t, v.clone(), *d));
        if *c {
            current.insert(n.clone(), *t);
        }
    }
    let mut feed: BTreeMap<String, Vec<(i64, String, bool, Kind)>> = BTreeMap::new();
    for c in &delivered {
        let o = c.observation.as_ref().expect("version");
        feed.entry(o.name.clone()).or_default().push((
            micros(&o.known_from),
            o.value.clone(),
            o.deleted,
            Kind::try_from(c.kind).expect("a known kind"),
        ));
    }
    assert_eq!(feed.len(), history.len());
    for (n, changes) in &feed {
        let times: Vec<i64> = changes.iter().map(|c| c.0).collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "{n}: delivered out of order: {times:?}"
        );
        let as_delivered: Vec<(i64, String, bool)> =
            changes.iter().map(|c| (c.0, c.1.clone(), c.2)).collect();
        assert_eq!(
            &as_delivered, &history[n],
            "{n}: the feed differs from the history"
        );
        let mut existed = false;
        for (t, _, deleted, kind) in changes {
            let expected = match (*deleted, existed) {
                (true, _) => Kind::Deleted,
                (false, true) => Kind::Revised,
                (false, false) => Kind::Created,
            };
            assert_eq!(*kind, expected, "{n} at {t}");
            existed = !*deleted;
        }
        assert_eq!(
            Some(&changes.last().expect("a change").0),
            current.get(n),
            "{n}"
        );
    }
    // What each writer was told it wrote is what the feed delivered.
    let delivered_values: HashMap<(String, i64), String> = delivered
        .iter()
        .map(|c| {
            (
                key(c),
                c.observation.as_ref().expect("version").value.clone(),
            )
        })
        .collect();
    assert_eq!(acknowledged.len(), written);
    for (n, t, v) in acknowledged {
        assert_eq!(
            delivered_values.get(&(n.clone(), t)),
            Some(&v),
            "{n} at {t}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// As-of reads of the last milliseconds while a large import merges

/// What a reader asks.
#[derive(Debug, Clone, PartialEq)]
enum Query {
    Get(String),
    /// The first page (3 observations) of an indicator.
    List(String),
}

/// What it was answered: (value, status, known_from in µs) of the observations found.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Found(String, i32, i64),
    NotFound,
    Page(Vec<(String, String, i32, i64)>),
}

/// How long an as-of read of the last milliseconds may wait for the writes in flight
/// (an import's merge among them).
const READ_PATIENCE: Duration = Duration::from_secs(30);

async fn ask(client: &mut Observations, query: &Query, as_of: prost_types::Timestamp) -> Answer {
    match query {
        Query::Get(n) => match client
            .get_observation(within(
                pb::GetObservationRequest {
                    name: n.clone(),
                    as_of: Some(as_of),
                },
                READ_PATIENCE,
            ))
            .await
        {
            Ok(r) => {
                let o = r.into_inner();
                Answer::Found(o.value, o.status, micros(&o.known_from))
            }
            Err(e) if e.code() == Code::NotFound => Answer::NotFound,
            Err(e) => panic!("GetObservation {n} as of {as_of:?}: {e:?}"),
        },
        Query::List(parent) => {
            let r = client
                .list_observations(within(
                    pb::ListObservationsRequest {
                        parent: parent.clone(),
                        as_of: Some(as_of),
                        page_size: 3,
                        ..Default::default()
                    },
                    READ_PATIENCE,
                ))
                .await
                .unwrap_or_else(|e| panic!("ListObservations {parent} as of {as_of:?}: {e:?}"))
                .into_inner();
            Answer::Page(
                r.observations
                    .into_iter()
                    .map(|o| (o.name, o.value, o.status, micros(&o.known_from)))
                    .collect(),
            )
        }
    }
}

/// Microseconds since the epoch of a local-clock instant.
fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_reads_of_the_last_milliseconds_are_stable_while_a_large_import_runs() {
    // 15 monthly indicators x 4,800 months (1800-M01 to 2199-M12) = 72,000 rows, sent
    // in 8 messages (7 of 10,000 and one of 2,000).
    const IMPORTED: usize = 15;
    const MONTHS: usize = 4_800;
    let started = Instant::now();
    let mut app = spawn_app().await;
    let imported: Vec<String> = (0..IMPORTED).map(|i| format!("cc-imp-{i:02}")).collect();
    for id in &imported {
        app.create_indicator_with(id, pb::Frequency::Monthly, 4)
            .await;
    }
    app.create_indicator("cc-small").await;
    // Before the import: 1800-M01 of every imported indicator (which the import
    // revises), and the small indicator's three years.
    let mut before: Vec<pb::Observation> = imported
        .iter()
        .map(|i| obs(&name(i, "1800-M01"), "0.5", S::Provisional))
        .collect();
    for y in 2018..=2020 {
        before.push(obs(&name("cc-small", &y.to_string()), "1", S::Normal));
    }
    app.write(before).await;
    let month = |m: usize| format!("{}-M{:02}", 1800 + m / 12, m % 12 + 1);
    assert_eq!(month(MONTHS - 1), "2199-M12");
    let rows: Vec<pb::Observation> = imported
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            (0..MONTHS).map(move |m| {
                obs(
                    &name(id, &month(m)),
                    &(i * 10_000 + m + 1).to_string(),
                    S::Normal,
                )
            })
        })
        .collect();
    assert_eq!(rows.len(), 72_000);
    let messages = import_messages(&rows, 10_000);
    assert_eq!(messages.len(), 8);

    let queries = Arc::new(vec![
        // Revised by the import.
        Query::Get(name("cc-imp-00", "1800-M01")),
        // Added by the import.
        Query::Get(name("cc-imp-14", "2199-M12")),
        // Revised by the small writers all along.
        Query::Get(name("cc-small", "2019")),
        Query::List("indicators/cc-imp-07".into()),
        Query::List("indicators/cc-small".into()),
    ]);
    let import_done = Arc::new(AtomicBool::new(false));
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));

    // Readers: as of 1 ms ago by the local clock (the server and the database share it),
    // as fast as they are answered.
    let mut readers = Vec::new();
    for r in 0..4 {
        let mut client = app.observations.clone();
        let (queries, stop, reads) = (queries.clone(), stop_reading.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let mut log = Vec::new();
            let mut k = r;
            while !stop.load(Ordering::Acquire) {
                reads.fetch_add(1, Ordering::AcqRel);
                let q = k % queries.len();
                k += 1;
                let as_of = SystemTime::now() - Duration::from_millis(1);
                let asked = Instant::now();
                let answer = ask(&mut client, &queries[q], as_of.into()).await;
                log.push((as_of, q, answer, asked.elapsed()));
            }
            log
        }));
    }
    // Small batch writers on another indicator, during the whole import.
    let mut writers = Vec::new();
    for w in 0..2 {
        let mut client = app.observations.clone();
        let done = import_done.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                n += 1;
                let rows = (2018..=2020)
                    .map(|y| {
                        obs(
                            &name("cc-small", &y.to_string()),
                            &format!("{w}{n}.{y}"),
                            S::Normal,
                        )
                    })
                    .collect();
                batch(&mut client, rows, Duration::from_secs(30))
                    .await
                    .unwrap_or_else(|e| panic!("small writer {w}: {e:?}"));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        }));
    }
    // The readers see the state before the import for a moment (a read of the last
    // milliseconds takes about 15 ms here: the small writes keep the horizon moving).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let import_start = SystemTime::now();
    let imported_result = app
        .observations
        .clone()
        .import_observations(within(
            tokio_stream::iter(messages),
            Duration::from_secs(60),
        ))
        .await
        .expect("the import")
        .into_inner();
    let import_end = SystemTime::now();
    assert_eq!(
        (
            imported_result.inserted,
            imported_result.revised,
            imported_result.unchanged
        ),
        (72_000 - 15, 15, 0)
    );
    // The readers go on a little after the import, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    import_done.store(true, Ordering::Release);
    let mut small_writes = 0;
    for w in writers {
        small_writes += w.await.expect("writer");
    }
    // At least 200 reads in all, however busy the machine (the whole suite runs beside).
    let enough = Instant::now() + Duration::from_secs(60);
    while reads.load(Ordering::Acquire) < 204 && Instant::now() < enough {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_reading.store(true, Ordering::Release);
    let mut log = Vec::new();
    for r in readers {
        log.extend(r.await.expect("reader"));
    }
    let (start_us, end_us) = (unix_us(import_start), unix_us(import_end));
    let in_window = log
        .iter()
        .filter(|(t, ..)| (start_us..=end_us).contains(&unix_us(*t)))
        .count();
    let slowest = log.iter().map(|l| l.3).max().unwrap_or_default();
    println!(
        "{} reads ({in_window} as of instants while the import ran, for {:?}; slowest {slowest:?}), \
         {small_writes} small writes, after {:?}",
        log.len(),
        import_end.duration_since(import_start).unwrap_or_default(),
        started.elapsed()
    );
    assert!(log.len() >= 200, "only {} reads", log.len());
    assert!(
        in_window >= 5,
        "only {in_window} reads of instants while the import ran"
    );
    // The reads straddle the import's commit: the row it adds was first not there, then
    // there.
    let added: Vec<&Answer> = log.iter().filter(|l| l.1 == 1).map(|l| &l.2).collect();
    assert!(added.iter().any(|a| **a == Answer::NotFound));
    assert!(added.iter().any(|a| matches!(a, Answer::Found(..))));

    // Every read asked again, with the same as_of, now that everything has committed.
    let mut client = app.observations.clone();
    let mut changed = Vec::new();
    for (as_of, q, first, _) in &log {
        let again = ask(&mut client, &queries[*q], (*as_of).into()).await;
        if &again != first {
            changed.push(format!(
                "{:?} as of {} µs (import {start_us}..{end_us}): first {first:?}, then {again:?}",
                queries[*q],
                unix_us(*as_of)
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "{} of {} as-of reads changed their answer:\n{}",
        changed.len(),
        log.len(),
        changed[..changed.len().min(10)].join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Delta sync from read_time

/// name -> (value, status, known_from in µs): what a delta-sync client holds.
type Mirror = BTreeMap<String, (String, i32, i64)>;

/// One poll: every page of ListObservations(parent, updated_after), applied to
/// `mirror`. Returns the read_time of the answer and how many observations came.
async fn poll(
    client: &mut Observations,
    parent: &str,
    updated_after: Option<prost_types::Timestamp>,
    mirror: &mut Mirror,
) -> (prost_types::Timestamp, usize) {
    let mut page_token = String::new();
    let mut read_time: Option<prost_types::Timestamp> = None;
    let mut rows = 0;
    loop {
        let page = client
            .list_observations(within(
                pb::ListObservationsRequest {
                    parent: parent.into(),
                    updated_after,
                    page_size: 25,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                Duration::from_secs(10),
            ))
            .await
            .unwrap_or_else(|e| panic!("ListObservations: {e:?}"))
            .into_inner();
        let t = page.read_time.expect("every answer carries read_time");
        match read_time {
            None => read_time = Some(t),
            Some(first) => assert_eq!(first, t, "every page carries the first page's read_time"),
        }
        for o in page.observations {
            rows += 1;
            if o.deleted {
                mirror.remove(&o.name);
            } else {
                let t = micros(&o.known_from);
                mirror.insert(o.name, (o.value, o.status, t));
            }
        }
        if page.next_page_token.is_empty() {
            return (read_time.expect("a page"), rows);
        }
        page_token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sync_with_read_time_never_misses_a_change() {
    const PARENT: &str = "indicators/cc-delta";
    let started = Instant::now();
    let mut app = spawn_app().await;
    let replica = app.replica().await;
    app.create_indicator_with("cc-delta", pb::Frequency::Monthly, 4)
        .await;
    // Twelve months that every writer keeps revising, and one new month per write that
    // nobody touches again (1800-M01 onwards): a version missed by the poller stays
    // missed, since no later change of that month comes to repair it. Every seventh
    // write also deletes one of the writer's own new months.
    let shared: Vec<String> = (1..=12)
        .map(|m| name("cc-delta", &format!("2000-M{m:02}")))
        .collect();
    let fresh = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4usize {
        let mut client = if w % 2 == 0 {
            app.observations.clone()
        } else {
            replica.observations.clone()
        };
        let (shared, fresh, stop) = (shared.clone(), fresh.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + w as u64);
            let mut mine = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::Acquire) {
                k += 1;
                let m = fresh.fetch_add(1, Ordering::AcqRel);
                let new = name("cc-delta", &format!("{}-M{:02}", 1800 + m / 12, m % 12 + 1));
                let mut rows = vec![obs(&new, &format!("{w}.{k}"), S::Provisional)];
                for i in rand::seq::index::sample(&mut rng, shared.len(), 2) {
                    rows.push(obs(&shared[i], &format!("{w}{k}.{i}"), S::Normal));
                }
                batch(&mut client, rows, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|e| panic!("writer {w}: {e:?}"));
                mine.push(new);
                if k % 7 == 0 {
                    let gone = mine[rng.random_range(0..mine.len())].clone();
                    match client
                        .delete_observation(pb::DeleteObservationRequest { name: gone })
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.code() == Code::NotFound => {}
                        Err(e) => panic!("writer {w}: DeleteObservation: {e:?}"),
                    }
                }
            }
            k
        }));
    }
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stop.store(true, Ordering::Release);
        })
    };

    // The poller, alternating replicas, as fast as it is answered.
    let mut clients = [app.observations.clone(), replica.observations.clone()];
    let mut mirror = Mirror::new();
    let mut read_time: Option<prost_types::Timestamp> = None;
    let (mut polls, mut rows_seen) = (0usize, 0usize);
    let mut read_times = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let (t, rows) = poll(&mut clients[polls % 2], PARENT, read_time, &mut mirror).await;
        let t_us = micros(&Some(t));
        assert!(
            t_us <= unix_us(SystemTime::now()),
            "read_time {t_us} is in the future"
        );
        read_times.push(t_us);
        read_time = Some(t);
        polls += 1;
        rows_seen += rows;
    }
    stopper.await.expect("stopper");
    let mut writes = 0;
    for w in writers {
        writes += w.await.expect("writer");
    }
    // One last poll, after every write has been answered.
    let (_, rows) = poll(&mut clients[polls % 2], PARENT, read_time, &mut mirror).await;
    rows_seen += rows;
    polls += 1;
    println!(
        "{writes} writes, {polls} polls returning {rows_seen} rows, after {:?}",
        started.elapsed()
    );
    assert!(polls >= 20, "only {polls} polls");
    // read_time moves on (the polls do not all read from the beginning).
    assert!(
        read_times.last() > read_times.first(),
        "read_time stayed at {:?}",
        read_times.first()
    );

    let expected: Mirror = sqlx::query_as::<_, (String, String, String, DateTime<Utc>)>(
        "SELECT v.period::text, v.value::text, v.status, v.known_from \
           FROM observation_versions v JOIN indicators i USING (indicator_key) \
          WHERE i.indicator_id = 'cc-delta' AND v.known_until IS NULL AND NOT v.deleted",
    )
    .fetch_all(&app.pool)
    .await
    .expect("current versions")
    .into_iter()
    .map(|(p, v, s, t)| {
        let status = if s == "P" { S::Provisional } else { S::Normal };
        (
            name("cc-delta", &p),
            (v, status as i32, t.timestamp_micros()),
        )
    })
    .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|(n, v)| mirror.get(*n) != Some(*v))
        .map(|(n, v)| format!("{n}: {v:?}, the poller has {:?}", mirror.get(n)))
        .collect();
    let extra: Vec<_> = mirror
        .keys()
        .filter(|n| !expected.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the poller missed changes:\n{}",
        missing.join("\n")
    );
    assert!(
        extra.is_empty(),
        "the poller holds observations that are gone: {extra:?}"
    );
    assert!(expected.len() > 12, "{} observations", expected.len());
}

// ---------------------------------------------------------------------------------------
// Writers of different indicators

/// A session of the test (not of the server) that holds an indicator's head row, as a
/// writer of that indicator does until it commits.
struct HeadLock(PgConnection);

impl HeadLock {
    async fn take(pool: &PgPool, indicator: &str) -> HeadLock {
        let mut conn = PgConnection::connect_with(&pool.connect_options())
            .await
            .expect("connect");
        sqlx::raw_sql("BEGIN")
            .execute(&mut conn)
            .await
            .expect("BEGIN");
        // OF h: the very lock a writer takes (its statement locks the head FOR UPDATE OF h).
        let locked: Vec<i32> = sqlx::query_scalar(
            "SELECT 1 FROM observation_heads h JOIN indicators i USING (indicator_key) \
              WHERE i.indicator_id = $1 FOR UPDATE OF h",
        )
        .bind(indicator)
        .fetch_all(&mut conn)
        .await
        .expect("lock the head");
        assert_eq!(locked, vec![1], "{indicator} has a head");
        HeadLock(conn)
    }

    async fn release(mut self) {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.0)
            .await
            .expect("ROLLBACK");
    }
}

/// Observation writes of the server still running in the database (those that waited
/// for a lock go on after their call ended).
async fn writes_in_flight(pool: &PgPool) -> i64 {
    crate::helpers::count(
        pool,
        "SELECT count(*) FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid() \
            AND state = 'active' AND query LIKE '%observations_write_batch(%'",
    )
    .await
}

/// Waits until the server has no observation write left in the database.
async fn settle_writes(pool: &PgPool) {
    let start = Instant::now();
    while writes_in_flight(pool).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "writes still running after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn versions_of(pool: &PgPool, indicator: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM observation_versions v JOIN indicators i USING (indicator_key) \
          WHERE i.indicator_id = $1",
    )
    .bind(indicator)
    .fetch_one(pool)
    .await
    .expect("count")
}

fn years(indicator: &str, from: i32, to: i32, value: &str) -> Vec<pb::Observation> {
    (from..=to)
        .map(|y| obs(&name(indicator, &y.to_string()), value, S::Normal))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_different_indicators_do_not_wait_for_each_other() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-a").await;
    app.create_indicator("cc-b").await;

    // A's head is held (as by a long write of A).
    let lock = HeadLock::take(&app.pool, "cc-a").await;
    let mut client = app.observations.clone();
    let t = Instant::now();
    let b = batch(
        &mut client,
        years("cc-b", 2019, 2020, "1.5"),
        Duration::from_secs(2),
    )
    .await;
    let b_took = t.elapsed();
    let b = b.unwrap_or_else(|e| panic!("a write of B while A is locked, after {b_took:?}: {e:?}"));
    assert_eq!((b.inserted, b.revised), (2, 0));
    assert!(b_took < Duration::from_secs(2), "B took {b_took:?}");
    // A write of A waits for A's lock until its 1 s deadline.
    let t = Instant::now();
    let a = batch(
        &mut client,
        years("cc-a", 2019, 2020, "2.5"),
        Duration::from_secs(1),
    )
    .await;
    let a_took = t.elapsed();
    let err = a.expect_err("a write of A while A is locked");
    println!(
        "B answered in {b_took:?}; A: {:?} {:?} after {a_took:?}, with {} write(s) of the \
         server still in the database",
        err.code(),
        err.message(),
        writes_in_flight(&app.pool).await
    );
    // It left nothing, also once A's lock is free and whatever it still had running in
    // the database has ended.
    lock.release().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle_writes(&app.pool).await;
    assert_eq!(versions_of(&app.pool, "cc-a").await, 0);
    assert_eq!(versions_of(&app.pool, "cc-b").await, 2);
    // And it said so: DEADLINE_EXCEEDED from the server (which means nothing was
    // written), by the deadline. Not the client's own timer (CANCELLED "Timeout
    // expired"), which would leave the client not knowing.
    assert_eq!(
        err.code(),
        Code::DeadlineExceeded,
        "after {a_took:?}: {err:?}"
    );
    assert!(a_took < Duration::from_millis(1500), "A took {a_took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_holds_an_advisory_lock_or_waits_for_a_lock_while_eight_indicators_are_written()
{
    let started = Instant::now();
    let mut app = spawn_app().await;
    let replica = app.replica().await;
    // No global lock: 8 writers of 8 indicators for 2 s, on two replicas, while a session
    // of the test samples pg_locks every few milliseconds. No session of this database
    // may ever hold an advisory lock or wait for a lock, and the replicas' writes must
    // run side by side in the database (within one replica, the batches that arrive
    // together share one call: a group of 8 batches is one transaction, not 8). Except
    // the relation extension lock ('extend'), which PostgreSQL takes for the
    // microseconds it adds a page to a table that several sessions insert into: it is
    // counted and shown, not a lock of one writer's transaction on another's.
    let ids: Vec<String> = (0..8).map(|i| format!("cc-w{i}")).collect();
    for id in &ids {
        app.create_indicator(id).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, id) in ids.iter().enumerate() {
        let client = if w % 2 == 0 {
            app.observations.clone()
        } else {
            replica.observations.clone()
        };
        let (mut client, id, stop) = (client, id.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                n += 1;
                batch(
                    &mut client,
                    years(&id, 2000, 2004, &format!("{w}.{n}")),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|e| panic!("writer of {id}: {e:?}"));
            }
            n
        }));
    }
    let mut sampler = PgConnection::connect_with(&app.pool.connect_options())
        .await
        .expect("connect");
    let (mut samples, mut most_at_once, mut extensions) = (0, 0, 0);
    let mut offending: Vec<(String, String, bool, String)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let found: Vec<(String, String, bool, String)> = sqlx::query_as(
            "SELECT l.locktype, l.mode, l.granted, left(coalesce(a.query, ''), 60) \
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
              WHERE a.datname = current_database() AND l.pid <> pg_backend_pid() \
                AND (l.locktype = 'advisory' OR NOT l.granted)",
        )
        .fetch_all(&mut sampler)
        .await
        .expect("pg_locks");
        for f in found {
            if f.0 == "extend" {
                extensions += 1;
            } else {
                offending.push(f);
            }
        }
        let at_once: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND pid <> pg_backend_pid() \
                AND state = 'active' AND query LIKE '%observations_write_batch%'",
        )
        .fetch_one(&mut sampler)
        .await
        .expect("pg_stat_activity");
        most_at_once = most_at_once.max(at_once);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Release);
    let mut writes = Vec::new();
    for w in writers {
        writes.push(w.await.expect("writer"));
    }
    println!(
        "{samples} samples, up to {most_at_once} writes at once in the database, \
         {extensions} waits for a relation extension, writes per writer {writes:?}, after {:?}",
        started.elapsed()
    );
    assert!(samples >= 50, "only {samples} samples");
    assert!(writes.iter().all(|&n| n >= 5), "{writes:?}");
    assert!(
        most_at_once >= 2,
        "never two writes in the database at once"
    );
    assert!(
        offending.is_empty(),
        "advisory locks held or lock waits in {} of {samples} samples: {:?}",
        offending.len(),
        &offending[..offending.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_of_another_indicator_is_not_held_up_by_writers_queued_on_one_head() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-a").await;
    app.create_indicator("cc-b").await;
    // A's head is held (as by a long import into A), and five writers of A queue behind
    // it: half of the default pool of ten connections, which leaves room for B.
    let lock = HeadLock::take(&app.pool, "cc-a").await;
    let mut queued = Vec::new();
    for q in 0..5 {
        let mut client = app.observations.clone();
        queued.push(tokio::spawn(async move {
            batch(
                &mut client,
                years("cc-a", 2000 + q, 2000 + q, "1"),
                Duration::from_secs(8),
            )
            .await
        }));
    }
    // They are waiting once one of them waits in the database for A's head (how many
    // of them the server sends to the database at once is its business) and the others
    // have had a moment to arrive.
    let start = Instant::now();
    while writes_in_flight(&app.pool).await < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no writer of A reached the database"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = app.observations.clone();
    let t = Instant::now();
    let b = batch(
        &mut client,
        years("cc-b", 2020, 2020, "1.5"),
        Duration::from_secs(2),
    )
    .await;
    let b_took = t.elapsed();
    // Where B was when it gave up: the server's writes in the database (A's five, plus B's
    // if it got that far) and the pool (the server's own, shared with the test).
    let (in_db, size, idle) = (
        writes_in_flight(&app.pool).await,
        app.pool.size(),
        app.pool.num_idle(),
    );
    lock.release().await;
    let mut a_results = Vec::new();
    for q in queued {
        a_results.push(q.await.expect("writer of A").map(|r| r.inserted));
    }
    println!(
        "B: {:?} after {b_took:?}; A: {a_results:?}",
        b.as_ref().map(|r| r.inserted)
    );
    let b = b.unwrap_or_else(|e| {
        panic!(
            "a write of B while five writers wait for A's head, after {b_took:?} \
             ({in_db} writes in the database; pool: {size} connections of 10, {idle} idle): {e:?}"
        )
    });
    assert_eq!(b.inserted, 1);
    assert!(b_took < Duration::from_secs(2), "B took {b_took:?}");
    // Once A's head is free, A's writers go through.
    for r in a_results {
        assert_eq!(r.expect("a writer of A, once the head is free"), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_commits_answers_its_result() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-a").await;
    let lock = HeadLock::take(&app.pool, "cc-a").await;
    let mut client = app.observations.clone();
    let write = tokio::spawn(async move {
        let t = Instant::now();
        let r = batch(
            &mut client,
            years("cc-a", 2018, 2020, "3.5"),
            Duration::from_secs(2),
        )
        .await;
        (r, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.release().await;
    let (r, took) = write.await.expect("the write");
    let r = r.unwrap_or_else(|e| {
        panic!("a write that waited 300 ms for its lock, after {took:?}: {e:?}")
    });
    println!("answered after {took:?}");
    // It waited for the lock (300 ms), then wrote its three rows and said so.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert_eq!((r.inserted, r.revised, r.unchanged), (3, 0, 0));
    assert_eq!(r.observations.len(), 3);
    assert!(r.observations.iter().all(|o| o.value == "3.5"));
    assert_eq!(versions_of(&app.pool, "cc-a").await, 3);
}

// ---------------------------------------------------------------------------------------
// TCP

/// The local port of `conn`'s socket, as the database sees it.
async fn client_port(conn: &mut PgConnection) -> u16 {
    let port: i32 = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(conn)
        .await
        .expect("inet_client_port()");
    u16::try_from(port).expect("a TCP connection has a client port")
}

#[tokio::test]
async fn database_connections_over_tcp_set_tcp_nodelay() {
    use tradewatch::store::net::nodelay_of_local_port;
    let Some(options) = tcp_admin() else {
        eprintln!(
            "skipped: the test database cannot be reached over TCP (DATABASE_URL is a unix socket)"
        );
        return;
    };
    let pool = store::connect_lazy(options.clone(), &store::PoolConfig::default());
    let mut pooled = pool.acquire().await.expect("a pooled connection over TCP");
    let port = client_port(&mut pooled).await;
    assert_eq!(
        nodelay_of_local_port(port),
        Some(true),
        "the pool's connection (local port {port})"
    );
    // Control: sqlx 0.9.0 does not set it, so a plain connection has it off. (With a
    // shared DATABASE_URL server, another test's pool may set it on every socket of this
    // process towards that server: a few attempts.)
    let mut plain_states = Vec::new();
    for _ in 0..5 {
        let mut plain = PgConnection::connect_with(&options).await.expect("connect");
        let port = client_port(&mut plain).await;
        plain_states.push(nodelay_of_local_port(port));
        plain.close().await.ok();
        if plain_states.last() == Some(&Some(false)) {
            break;
        }
    }
    assert_eq!(
        plain_states.last(),
        Some(&Some(false)),
        "a plain sqlx connection: {plain_states:?}"
    );
    drop(pooled);
    pool.close().await;
}

/// The health of the whole server (`""`), or the check's error.
async fn health(channel: &tonic::transport::Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// Polls health until it reports `want`; returns how long that took, or panics after
/// `patience`.
async fn wait_health(
    channel: &tonic::transport::Channel,
    want: ServingStatus,
    patience: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = health(channel).await;
        if got.as_ref().is_ok_and(|s| *s == want as i32) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < patience,
            "health did not turn {want:?} within {patience:?} (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GetProgram, ListPrograms and BatchCreateObservations at once, without a client
/// deadline, each timed.
async fn three_calls(
    programs: &ProgramServiceClient<Ch>,
    observations: &Observations,
    n: usize,
) -> Vec<(&'static str, Result<(), tonic::Status>, Duration)> {
    let (mut p1, mut p2, mut o) = (programs.clone(), programs.clone(), observations.clone());
    let get = async move {
        let t = Instant::now();
        let r = p1
            .get_program(pb::GetProgramRequest {
                name: "programs/cq".into(),
            })
            .await;
        ("GetProgram", r.map(|_| ()), t.elapsed())
    };
    let list = async move {
        let t = Instant::now();
        let r = p2.list_programs(pb::ListProgramsRequest::default()).await;
        ("ListPrograms", r.map(|_| ()), t.elapsed())
    };
    let write = async move {
        let t = Instant::now();
        let r = o
            .batch_create_observations(pb::BatchCreateObservationsRequest {
                request_id: String::new(),
                observations: vec![obs(
                    "indicators/cq-offshore/observations/2021",
                    &format!("{n}.5"),
                    S::Estimated,
                )],
                validate_only: false,
            })
            .await;
        ("BatchCreateObservations", r.map(|_| ()), t.elapsed())
    };
    let (a, b, c) = tokio::join!(get, list, write);
    vec![a, b, c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_over_tcp_calls_fail_unavailable_within_a_second_and_recover() {
    let started = Instant::now();
    // A private cluster: this test stops it.
    let pg = EmbeddedPostgres::start_temporary(std::process::id())
        .await
        .expect("start a private PostgreSQL cluster");
    let admin: PgConnectOptions = pg
        .tcp_url(DEFAULT_DATABASE)
        .expect("a temporary cluster listens on 127.0.0.1")
        .parse()
        .expect("url");
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .expect("connect over TCP");
    sqlx::raw_sql("CREATE DATABASE tw_tcp")
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let pool = store::connect_lazy(admin.database("tw_tcp"), &store::PoolConfig::default());
    store::migrate(&pool).await.expect("migrate");
    let key = create_key(&pool, Role::Admin).await;
    let (addr, stop) = serve_pool(pool.clone(), test_options()).await;
    let plain = raw_channel(addr).await;
    let channel = authed(plain.clone(), &key);
    let mut programs = ProgramServiceClient::new(channel.clone());
    let mut indicators = IndicatorServiceClient::new(channel.clone());
    let observations = ObservationServiceClient::new(channel);
    programs
        .create_program(pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(program("Chongqing 2015")),
            program_id: "cq".into(),
        })
        .await
        .expect("CreateProgram");
    indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(indicator("Offshore outsourcing")),
            indicator_id: "cq-offshore".into(),
        })
        .await
        .expect("CreateIndicator");
    // Calls at once, a few times, so that the pool holds several connections.
    for n in 0..3 {
        let before = three_calls(&programs, &observations, n).await;
        assert!(before.iter().all(|c| c.1.is_ok()), "{before:?}");
    }
    wait_health(&plain, ServingStatus::Serving, Duration::from_secs(5)).await;
    println!("{} pooled connections before the outage", pool.size());

    crate::faults::pg_ctl(&pg, &["-m", "fast", "-w", "-t", "60", "stop"]).await;
    // Round 1 meets the pooled connections the stop broke; round 2 comes once they are
    // gone and the API key's cached check has expired (so the key is checked again).
    for round in 1..=2 {
        if round == 2 {
            tokio::time::sleep(tradewatch::calls::KEY_CACHE_TTL).await;
            let t = Instant::now();
            while pool.size() > 0 {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "{} pooled connections left",
                    pool.size()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let (calls, not_serving) = tokio::join!(
            three_calls(&programs, &observations, 10 + round),
            wait_health(&plain, ServingStatus::NotServing, Duration::from_secs(2)),
        );
        println!("round {round}: NOT_SERVING after {not_serving:?}; {calls:?}");
        for (what, r, took) in &calls {
            let status = r.as_ref().expect_err(what);
            assert_eq!(
                status.code(),
                Code::Unavailable,
                "round {round}: {what}: {status:?}"
            );
            assert!(
                *took < Duration::from_secs(1),
                "round {round}: {what} took {took:?}"
            );
        }
    }

    // The database comes back: the same server serves again, by itself.
    let root = pg.data_dir().parent().expect("the cluster's directory");
    let log = root.join("postgres.log");
    crate::faults::pg_ctl(
        &pg,
        &[
            "-l",
            log.to_str().expect("a UTF-8 path"),
            "-w",
            "-t",
            "60",
            "start",
        ],
    )
    .await;
    let back = Instant::now();
    let serving = wait_health(&plain, ServingStatus::Serving, Duration::from_secs(5)).await;
    let mut failures = Vec::new();
    let mut n = 20;
    loop {
        n += 1;
        let calls = three_calls(&programs, &observations, n).await;
        if calls.iter().all(|c| c.1.is_ok()) {
            break;
        }
        for (what, r, _) in &calls {
            if let Err(s) = r {
                assert_eq!(
                    s.code(),
                    Code::Unavailable,
                    "{what} after the restart: {s:?}"
                );
            }
        }
        failures.push(calls);
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "calls did not recover within 5 s: {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "SERVING {serving:?} after the restart, calls recovered after {:?} ({} failed rounds); test took {:?}",
        back.elapsed(),
        failures.len(),
        started.elapsed()
    );
    drop(stop);
    pool.close().await;
    pg.stop().await.expect("stop the private cluster");
}

// ---------------------------------------------------------------------------------------
// Cursors of the commit-number era

/// A cursor as handed out before migration 0004: base64url of `1.{seq}` or
/// `1.{seq}.{indicator key}.{period}`.
fn v1_cursor(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// (kind, name, value) of the changes of `feed` until `n` have come, then checks that
/// nothing more comes for a moment.
async fn changes(
    feed: &mut tonic::Streaming<pb::WatchObservationsResponse>,
    n: usize,
) -> Vec<(Kind, String, String)> {
    let mut all = Vec::new();
    while all.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), feed.message())
            .await
            .expect("a message within 10 s")
            .expect("the feed does not fail")
            .expect("the feed stays open");
        for c in m.changes {
            let o = c.observation.expect("version");
            all.push((Kind::try_from(c.kind).expect("kind"), o.name, o.value));
        }
    }
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(500), feed.message()).await {
        panic!("more than {n} changes: {all:?}, then {m:?}");
    }
    all
}

#[tokio::test]
async fn cursors_handed_out_before_instant_ordering_still_resume() {
    const IND: &str = "cc-legacy";
    let mut app = spawn_app().await;
    app.create_indicator(IND).await;
    let (y2018, y2019, y2020, y2021) = (
        name(IND, "2018"),
        name(IND, "2019"),
        name(IND, "2020"),
        name(IND, "2021"),
    );
    // Commit 7 of the old numbering was this first write: three versions at T.
    app.write(vec![
        obs(&y2018, "21.5", S::Normal),
        obs(&y2019, "20.6", S::Normal),
        obs(&y2020, "22.8", S::Normal),
    ])
    .await;
    // Then, each at a later instant: a revision, a deletion, a new year.
    app.write(vec![obs(&y2019, "20.7", S::Normal)]).await;
    app.observations
        .delete_observation(pb::DeleteObservationRequest {
            name: y2018.clone(),
        })
        .await
        .expect("DeleteObservation");
    app.write(vec![obs(&y2021, "23.1", S::Normal)]).await;
    let (t, key): (DateTime<Utc>, i32) = sqlx::query_as(
        "SELECT min(v.known_from), min(v.indicator_key) FROM observation_versions v",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the first write's instant");
    assert_eq!(
        crate::helpers::count(
            &app.pool,
            "SELECT count(*) FROM observation_versions \
              WHERE known_from = (SELECT min(known_from) FROM observation_versions)"
        )
        .await,
        3
    );
    sqlx::query(
        "INSERT INTO observation_commits (seq, commit_time, method, versions) \
         VALUES (7, $1, 'BatchCreateObservations', 3)",
    )
    .bind(t)
    .execute(&app.pool)
    .await
    .expect("the old commit row");

    let watch = |cursor: String| {
        let mut client = app.observations.clone();
        async move {
            client
                .watch_observations(pb::WatchObservationsRequest {
                    start_cursor: cursor,
                    ..Default::default()
                })
                .await
        }
    };
    // After commit 7: the three later changes, not commit 7's own.
    let mut feed = watch(v1_cursor("1.7"))
        .await
        .expect("a v1 cursor")
        .into_inner();
    assert_eq!(
        changes(&mut feed, 3).await,
        vec![
            (Kind::Revised, y2019.clone(), "20.7".into()),
            (Kind::Deleted, y2018.clone(), String::new()),
            (Kind::Created, y2021.clone(), "23.1".into()),
        ]
    );
    // After 2019 within commit 7: its 2020, then the same three.
    let mut feed = watch(v1_cursor(&format!("1.7.{key}.2019")))
        .await
        .expect("a v1 cursor within a commit")
        .into_inner();
    assert_eq!(
        changes(&mut feed, 4).await,
        vec![
            (Kind::Created, y2020.clone(), "22.8".into()),
            (Kind::Revised, y2019.clone(), "20.7".into()),
            (Kind::Deleted, y2018.clone(), String::new()),
            (Kind::Created, y2021.clone(), "23.1".into()),
        ]
    );
    // A commit this database never had.
    let err = match watch(v1_cursor("1.8")).await {
        Ok(_) => panic!("a cursor naming commit 8 was accepted"),
        Err(e) => e,
    };
    assert_eq!(
        crate::helpers::assert_invalid(&err, "start_cursor"),
        "INVALID_CURSOR"
    );
}

/// Batches of one indicator that arrive together cannot share a database call; one is
/// put aside while the other goes. Put aside, it must still be written at once, also
/// when every other writer is idle (an idle writer waits for the queue, and the batch
/// put aside must not wait behind it for a batch that never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_one_indicator_sent_together_are_all_written_at_once() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-same").await;
    for round in 0..20 {
        let calls = (0..3).map(|k| {
            let mut client = app.observations.clone();
            let year = 1900 + round * 3 + k;
            tokio::spawn(async move {
                let t = Instant::now();
                let r = batch(
                    &mut client,
                    years("cc-same", year, year, "1"),
                    Duration::from_secs(5),
                )
                .await;
                (r, t.elapsed())
            })
        });
        for (k, call) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            let (r, took) = call.expect("task");
            let r = r.unwrap_or_else(|e| panic!("round {round}, batch {k} after {took:?}: {e:?}"));
            assert_eq!(r.inserted, 1, "round {round}, batch {k}");
            assert!(
                took < Duration::from_secs(2),
                "round {round}, batch {k} took {took:?}"
            );
        }
        // Every writer idle again.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(versions_of(&app.pool, "cc-same").await, 60);
}

/// An import stamps its versions only once it holds the heads of its first message's
/// indicators: a write of one of them that commits while the import waits for its head
/// is earlier than the import, which then supersedes it (it used to take its instant
/// first, find the write later than itself, and fail with ABORTED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_waiting_for_its_first_head_supersedes_the_write_that_held_it() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-imp").await;
    let mut client = app.observations.clone();
    let first = batch(
        &mut client,
        years("cc-imp", 2010, 2010, "1"),
        Duration::from_secs(5),
    )
    .await
    .expect("the first value");
    assert_eq!(first.inserted, 1);

    // A writer holds the head...
    let mut lock = HeadLock::take(&app.pool, "cc-imp").await;
    // ... while the import of 2010 and 2011 begins.
    let mut importer = app.observations.clone();
    let import = tokio::spawn(async move {
        importer
            .import_observations(within(
                tokio_stream::iter(vec![pb::ImportObservationsRequest {
                    observations: years("cc-imp", 2010, 2011, "3"),
                    ..Default::default()
                }]),
                Duration::from_secs(10),
            ))
            .await
            .map(|r| r.into_inner())
    });
    // Once the import waits for the head, the writer revises 2010 to 2 and commits.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND application_name = 'tradewatch' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import never waited for the head"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::raw_sql(
        "WITH t AS (SELECT clock_timestamp() AS t), \
              closed AS (UPDATE observation_versions v SET known_until = (SELECT t FROM t) \
                          FROM indicators i \
                         WHERE i.indicator_id = 'cc-imp' AND v.indicator_key = i.indicator_key \
                           AND v.period = '2010' AND v.known_until IS NULL RETURNING v.*) \
         INSERT INTO observation_versions \
                (indicator_key, period, value, status, comment, source, deleted, known_from) \
         SELECT indicator_key, period, 2, status, comment, source, false, (SELECT t FROM t) \
           FROM closed; \
         COMMIT",
    )
    .execute(&mut lock.0)
    .await
    .expect("the writer's revision");

    let imported = import.await.unwrap().expect("the import after the write");
    assert_eq!(
        (imported.inserted, imported.revised, imported.unchanged),
        (1, 1, 0)
    );
    // 2010: 1, then the writer's 2, then the import's 3; 2011: the import's 3.
    let values: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT period, value::text, known_until IS NULL FROM observation_versions \
          ORDER BY period, known_from",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let expected = [
        ("2010", "1", false),
        ("2010", "2", false),
        ("2010", "3", true),
        ("2011", "3", true),
    ];
    assert_eq!(
        values,
        expected
            .iter()
            .map(|(p, v, c)| (p.to_string(), v.to_string(), *c))
            .collect::<Vec<_>>()
    );
}

/// `rows` as the messages of one import, `per` rows each.
fn import_messages(rows: &[pb::Observation], per: usize) -> Vec<pb::ImportObservationsRequest> {
    rows.chunks(per)
        .map(|c| pb::ImportObservationsRequest {
            observations: c.to_vec(),
            ..Default::default()
        })
        .collect()
}

/// `count` monthly observations of `indicator` from 1900-M01, valued `base + month`.
fn months(indicator: &str, count: usize, base: usize) -> Vec<pb::Observation> {
    (0..count)
        .map(|m| {
            let period = format!("{}-M{:02}", 1900 + m / 12, m % 12 + 1);
            obs(
                &name(indicator, &period),
                &(base + m).to_string(),
                S::Normal,
            )
        })
        .collect()
}

/// Imports `rows` in messages of 500.
async fn import_rows(
    client: &mut Observations,
    rows: Vec<pb::Observation>,
) -> pb::ImportObservationsResponse {
    client
        .import_observations(within(
            tokio_stream::iter(import_messages(&rows, 500)),
            Duration::from_secs(30),
        ))
        .await
        .expect("the import")
        .into_inner()
}

/// The versions an import adds with COPY for indicators that had none are left out of
/// the feed's per-row index and found through their group (migrations/0005_bulk_feed.sql).
/// The feed still delivers every version once, in (known_from, indicator, period) order,
/// with pages that end inside a group and resume from their cursor on the other replica,
/// interleaved with batch writes and an import's rows for an indicator that had data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_delivers_imported_rows_once_in_order_across_pages_and_replicas() {
    let mut app = spawn_app().await;
    let replica = app.replica().await;
    for id in ["cc-a", "cc-b", "cc-c", "cc-d"] {
        app.create_indicator_with(id, pb::Frequency::Monthly, 0)
            .await;
    }
    let mut client = app.observations.clone();
    let ten = Duration::from_secs(10);
    // 5 versions of cc-a by a batch.
    batch(&mut client, months("cc-a", 5, 0), ten)
        .await
        .expect("batch cc-a");
    // 1,500 of cc-b and 400 of cc-c, in bulk (neither had observations).
    let first = import_rows(
        &mut client,
        [months("cc-b", 1_500, 10_000), months("cc-c", 400, 20_000)].concat(),
    )
    .await;
    assert_eq!((first.inserted, first.revised), (1_900, 0));
    // 2 revisions of cc-b by a batch.
    let revised = batch(&mut client, months("cc-b", 2, 30_000), ten)
        .await
        .expect("batch cc-b");
    assert_eq!(revised.revised, 2);
    // cc-a had observations: 1 revised and 3 new through the classifying path; cc-d's
    // 300 in bulk.
    let mut second = months("cc-a", 8, 40_000);
    second.drain(1..5);
    let second = import_rows(&mut client, [second, months("cc-d", 300, 50_000)].concat()).await;
    assert_eq!((second.inserted, second.revised), (303, 1));
    // 5 + 1,900 + 2 + 4 + 300 = 2,211 versions.
    let expected: Vec<(String, i64)> = sqlx::query_as::<_, (String, String, DateTime<Utc>)>(
        "SELECT i.indicator_id::text, v.period::text, v.known_from \
           FROM observation_versions v JOIN indicators i USING (indicator_key) \
          ORDER BY v.known_from, v.indicator_key, v.period",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(i, p, t)| (name(&i, &p), t.timestamp_micros()))
    .collect();
    assert_eq!(expected.len(), 2_211);
    let bulk: i64 = sqlx::query_scalar("SELECT count(*) FROM observation_versions WHERE bulk")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(bulk, 1_500 + 400 + 300);

    // Pages of at most 1,000 changes; after each page the client resumes from its
    // cursor on the other replica.
    let replicas = [app.observations.clone(), replica.observations.clone()];
    let mut delivered: Vec<(String, i64, Kind)> = Vec::new();
    let mut pages = Vec::new();
    let mut cursor = String::new();
    for hop in 0..10 {
        if delivered.len() >= expected.len() {
            break;
        }
        let request = pb::WatchObservationsRequest {
            from_beginning: cursor.is_empty(),
            start_cursor: cursor.clone(),
            ..Default::default()
        };
        let mut feed = replicas[hop % 2]
            .clone()
            .watch_observations(request)
            .await
            .expect("WatchObservations")
            .into_inner();
        let m = tokio::time::timeout(Duration::from_secs(5), feed.message())
            .await
            .expect("a page comes")
            .expect("the feed does not fail")
            .expect("stays open");
        pages.push(m.changes.len());
        cursor = m.cursor;
        for c in m.changes {
            let o = c.observation.expect("a change carries its version");
            delivered.push((
                o.name,
                micros(&o.known_from),
                Kind::try_from(c.kind).unwrap(),
            ));
        }
    }
    // The first page ends inside cc-b's group (5 of cc-a, then 995 of cc-b's 1,500).
    assert_eq!(pages, vec![1_000, 1_000, 211], "page sizes");
    let as_delivered: Vec<(String, i64)> = delivered.iter().map(|d| (d.0.clone(), d.1)).collect();
    assert_eq!(
        as_delivered, expected,
        "the feed is the stored versions, in order, once each"
    );
    let kinds = |k: Kind| delivered.iter().filter(|d| d.2 == k).count();
    // Revised: cc-b's 2 and cc-a's 1; all others created.
    assert_eq!((kinds(Kind::Created), kinds(Kind::Revised)), (2_208, 3));
    // Nothing more, and a feed resumed at the end waits.
    let mut feed = replicas[0]
        .clone()
        .watch_observations(pb::WatchObservationsRequest {
            start_cursor: cursor,
            ..Default::default()
        })
        .await
        .expect("WatchObservations")
        .into_inner();
    let more = tokio::time::timeout(Duration::from_millis(500), feed.message()).await;
    assert!(
        more.is_err()
            || more.as_ref().is_ok_and(|m| m
                .as_ref()
                .is_ok_and(|m| m.as_ref().is_some_and(|m| m.changes.is_empty()))),
        "nothing after the last change: {more:?}"
    );
}

/// A replica announces its commits to the others (a NOTIFY, a transaction of its own
/// that wakes every listening replica) only while another replica has WatchObservations
/// streams, and a stream opened on one replica gets the other's writes at once, not at
/// its next second's poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_announce_their_commits_only_while_another_one_watches() {
    use tradewatch::store::observations::CHANNEL;
    let mut app = spawn_app().await;
    let replica = app.replica().await;
    app.create_indicator_with("nw-region", pb::Frequency::Monthly, 4)
        .await;
    let period = |k: usize| {
        name(
            "nw-region",
            &format!("{}-M{:02}", 2000 + k / 12, k % 12 + 1),
        )
    };
    // A connection of the test's own listens on the service's channel (it is not named
    // as a watching replica's is).
    let mut heard = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .expect("listener");
    heard.listen(CHANNEL).await.expect("LISTEN");

    // Nobody watches: twenty writes on replica A, in one second, announce nothing.
    for k in 0..20 {
        batch(
            &mut app.observations,
            vec![obs(&period(k), &k.to_string(), S::Normal)],
            Duration::from_secs(10),
        )
        .await
        .expect("written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), heard.recv()).await;
    assert!(
        quiet.is_err(),
        "a commit was announced while no replica watched: {quiet:?}"
    );

    // A stream on replica B: it says so, and from then on A announces its commits.
    let mut feed = replica
        .observations
        .clone()
        .watch_observations(pb::WatchObservationsRequest {
            from_beginning: true,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let mut seen = 0;
    while seen < 20 {
        seen += crate::observations::next(&mut feed).await.changes.len();
    }
    assert_eq!(seen, 20, "every change once");
    let first = tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("the watching replica says so")
        .expect("notification");
    assert_eq!(first.payload(), tradewatch::feed::WATCHING);

    for k in 20..25 {
        let sent = Instant::now();
        batch(
            &mut app.observations,
            vec![obs(&period(k), &k.to_string(), S::Normal)],
            Duration::from_secs(10),
        )
        .await
        .expect("written");
        let m = crate::observations::next(&mut feed).await;
        assert_eq!(m.changes.len(), 1, "write {k}");
        let waited = sent.elapsed();
        let announced = tokio::time::timeout(Duration::from_secs(1), heard.recv())
            .await
            .unwrap_or_else(|_| panic!("write {k} on replica A was not announced"))
            .expect("notification");
        assert_eq!(announced.payload(), "", "write {k}");
        // Without the announcement, B would find it at its next poll, up to 1 s later.
        assert!(
            waited < Duration::from_millis(900),
            "write {k} took {waited:?} to reach the other replica's stream"
        );
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(20), heard.recv()).await {}
    }
}
