-- Observation writes without a global lock (docs/consistency.md explains the design).
--
-- Until now every observation write took one advisory lock from classification to
-- commit and numbered itself in observation_commits, so writers went one at a time.
-- From here on:
--
-- * writers serialise per indicator only, on the indicator's row in observation_heads
--   (writers of different indicators never wait for each other);
-- * a write's versions are stamped (`known_from`) after its locks are taken, with a
--   time later than every version it can see, so the versions of one observation follow
--   each other in the order the writes took effect;
-- * the change feed and `as_of` reads order and cut versions by `known_from` up to a
--   stable horizon that readers compute from the transactions in flight
--   (pg_stat_activity), instead of by a gapless commit number.

-- The commit number goes: the feed is ordered by (known_from, indicator_key, period).
-- observation_commits stays as history: it maps the commit numbers in cursors handed out
-- before this migration to their instants, so that those cursors still resume.
DROP INDEX observation_versions_commit_brin;
ALTER TABLE observation_versions DROP COLUMN commit_seq;

-- One unique index instead of two (the primary key on (indicator_key, period,
-- known_from) and the partial unique index of current versions): the versions of one
-- observation have distinct `known_until` (each is the next version's `known_from`), and
-- NULLS NOT DISTINCT makes the current version (known_until NULL) unique too. It serves
-- current lookups (known_until IS NULL is an index condition), history and as-of reads
-- (by indicator and period), and it is one index less to maintain on every insert: an
-- import spends most of its time in index maintenance.
ALTER TABLE observation_versions DROP CONSTRAINT observation_versions_pkey;
DROP INDEX observation_versions_current;
ALTER TABLE observation_versions ADD CONSTRAINT observation_versions_key
    UNIQUE NULLS NOT DISTINCT (indicator_key, period, known_until);

-- The change feed reads versions in (known_from, indicator_key, period) order after a
-- cursor, and every write finds the latest known_from with one step down this index.
CREATE INDEX observation_versions_feed
    ON observation_versions (known_from, indicator_key, period);

-- One row per indicator: observation writers lock it (FOR UPDATE) for the length of
-- their transaction, which serialises writers of the same indicator and nobody else. A
-- row lock, not an advisory lock: an import that writes to 10,000 indicators takes
-- 10,000 of them, which the lock table would not hold.
CREATE TABLE observation_heads (
    indicator_key integer PRIMARY KEY
        REFERENCES indicators (indicator_key) ON DELETE CASCADE
);
INSERT INTO observation_heads (indicator_key) SELECT indicator_key FROM indicators;

CREATE FUNCTION indicators_create_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO observation_heads (indicator_key) VALUES (NEW.indicator_key);
    RETURN NULL;
END $$;

CREATE TRIGGER indicators_create_head AFTER INSERT ON indicators
    FOR EACH ROW EXECUTE FUNCTION indicators_create_head();

-- Deleting an indicator deletes its head (cascade), which waits for a writer holding it.
-- Checked here, after that wait, with the writer's versions visible: an indicator whose
-- observations a concurrent write has just added is not deleted under them.
CREATE FUNCTION observation_heads_without_observations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM observation_versions WHERE indicator_key = OLD.indicator_key) THEN
        RAISE EXCEPTION 'indicator % still has observations', OLD.indicator_key
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_versions_indicator_fkey';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER observation_heads_without_observations AFTER DELETE ON observation_heads
    FOR EACH ROW EXECUTE FUNCTION observation_heads_without_observations();

-- The batch write (BatchCreateObservations, DeleteObservation), one call: see
-- write_batch in src/store/observations.rs. In order:
--
-- 1. resolve the indicator ids (refuse unknown ones and periods of another frequency);
-- 2. replay a request id already used;
-- 3. lock the heads of the indicators written to, in key order (this gives the
--    transaction its id, before anything is stamped: see docs/consistency.md);
-- 4. with a snapshot taken after the locks (a new statement: in READ COMMITTED each
--    statement of a function gets one), classify every row against the current version,
--    close the superseded versions, add the new ones, write one audit event per
--    indicator, and return each row's outcome;
-- 5. check the deadline, then claim the request id with the result.
--
-- Data-modifying CTEs run in an order PostgreSQL does not promise; where it matters it is
-- forced through the data: the superseded versions are closed (`closed`) before the new
-- ones are added (`added` waits for `closed`'s count: the unique key allows one current
-- version per observation at any moment).
--
-- The plans are pinned: generic (planned once per session, not for every call) and made
-- of index lookups in nested loops (sequential and bitmap scans, hash and merge joins
-- off). Left to its statistics, the planner picks hash joins over whole tables while they
-- are small (a new database, or one just truncated) and keeps those plans as the tables
-- grow, until the next ANALYZE; a batch's rows are each one index lookup away.
CREATE FUNCTION observations_write_batch(
    p_ids text[], p_periods text[], p_frequencies text[], p_values text[], p_statuses text[],
    p_comments text[], p_sources text[], p_deleted boolean[], p_actor text, p_method text,
    p_request_id text, p_claim uuid, p_claim_method text, p_fingerprint bytea,
    p_validate_only boolean, p_deadline_ms integer)
RETURNS TABLE (ord integer, outcome text, value text, status text, comment text, source text,
               deleted boolean, known_from timestamptz, frequency text, stored bytea)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_deadline timestamptz := statement_timestamp() + p_deadline_ms * interval '1 millisecond';
    v_keys     integer[];
    v_freqs    text[];
    v_stamp    timestamptz;
    v_added    bigint;
BEGIN
    -- Each row's indicator and its frequency, in row order; a write also locks the
    -- indicators' heads, in key order. p_frequencies are the rows' periods' frequencies.
    IF p_validate_only THEN
        SELECT array_agg(i.indicator_key ORDER BY u.ord), array_agg(i.frequency ORDER BY u.ord)
          INTO v_keys, v_freqs
          FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
          JOIN indicators i ON i.indicator_id = u.id;
    ELSE
        -- The lock also gives the transaction its id, before anything is stamped (see
        -- docs/consistency.md).
        SELECT array_agg(x.key ORDER BY x.ord), array_agg(x.freq ORDER BY x.ord)
          INTO v_keys, v_freqs
          FROM (SELECT u.ord, h.indicator_key AS key, i.frequency AS freq
                  FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
                  JOIN indicators i ON i.indicator_id = u.id
                  JOIN observation_heads h ON h.indicator_key = i.indicator_key
                 ORDER BY h.indicator_key
                   FOR UPDATE OF h) x;
    END IF;
    IF v_freqs IS DISTINCT FROM p_frequencies THEN
        -- Unknown indicators, or periods in another frequency: name them, write nothing.
        RETURN QUERY
            SELECT u.ord::integer,
                   CASE WHEN i.indicator_key IS NULL THEN 'unknown_indicator' ELSE 'frequency' END,
                   NULL::text, NULL::text, NULL::text, NULL::text, NULL::boolean,
                   NULL::timestamptz, i.frequency, NULL::bytea
              FROM unnest(p_ids, p_frequencies) WITH ORDINALITY AS u(id, freq, ord)
              LEFT JOIN indicators i ON i.indicator_id = u.id
             WHERE i.indicator_key IS NULL OR i.frequency <> u.freq
             ORDER BY u.ord LIMIT 100;
        RETURN;
    END IF;
    IF p_claim IS NOT NULL AND NOT p_validate_only THEN
        RETURN QUERY
            SELECT NULL::integer,
                   CASE WHEN k.method = p_claim_method AND k.fingerprint = p_fingerprint
                        THEN 'replay' ELSE 'reused' END,
                   NULL::text, NULL::text, NULL::text, NULL::text, NULL::boolean,
                   NULL::timestamptz, NULL::text, k.response
              FROM idempotency_keys k WHERE k.request_id = p_claim;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- From here on, new snapshots: every writer of these indicators before this one is
    -- visible. The stamp: later than the transaction's id (the locks gave it one), later
    -- than every version known (so that it supersedes what it replaces even if the clock
    -- stepped back).
    IF NOT p_validate_only THEN
        v_stamp := greatest(clock_timestamp(),
                            (SELECT max(v.known_from) FROM observation_versions v)
                                + interval '1 microsecond');
    END IF;
    -- New observations, the usual rows of a load, are added as they are: the unique key
    -- refuses the rows that have a current version, which the classification below then
    -- takes (and there the rows added here have this write's stamp).
    IF NOT p_validate_only AND NOT (true = ANY(p_deleted)) THEN
        INSERT INTO observation_versions
               (indicator_key, period, value, status, comment, source, deleted, known_from)
        SELECT n.key, n.period::sdmx_period, n.value::numeric, n.status, n.comment, n.source,
               false, v_stamp
          FROM unnest(v_keys, p_periods, p_values, p_statuses, p_comments, p_sources)
               AS n(key, period, value, status, comment, source)
            ON CONFLICT ON CONSTRAINT observation_versions_key DO NOTHING;
        GET DIAGNOSTICS v_added = ROW_COUNT;
        IF v_added = cardinality(p_ids) THEN
            INSERT INTO audit_events (actor, method, resource, action, request_id, after)
            SELECT nullif(p_actor, ''), p_method, 'indicators/' || p_ids[min(k.ord)] || '/observations',
                   'IMPORT', p_request_id,
                   jsonb_build_object('known_from', v_stamp, 'inserted', count(*), 'revised', 0,
                                      'deleted', 0, 'unchanged', 0)
              FROM unnest(v_keys) WITH ORDINALITY AS k(key, ord)
             GROUP BY k.key
             ORDER BY 3;
            IF clock_timestamp() > v_deadline THEN
                PERFORM observations_past_deadline();
            END IF;
            IF p_claim IS NOT NULL THEN
                INSERT INTO idempotency_keys (request_id, method, fingerprint, response)
                VALUES (p_claim, p_claim_method, p_fingerprint, convert_to(jsonb_build_object(
                    'counts', jsonb_build_object('inserted', v_added, 'revised', 0,
                                                 'unchanged', 0, 'deleted', 0),
                    'commit_time_us', (extract(epoch FROM v_stamp) * 1000000)::bigint)::text,
                    'UTF8'));
            END IF;
            RETURN QUERY
                SELECT u.ord::integer, 'I', p_values[u.ord], p_statuses[u.ord], p_comments[u.ord],
                       p_sources[u.ord], false, v_stamp, NULL::text, NULL::bytea
                  FROM generate_subscripts(p_ids, 1) AS u(ord);
            RETURN;
        END IF;
    END IF;
    -- Everything else: each row against the current version. J: added just above.
    RETURN QUERY
    WITH stamp AS MATERIALIZED (
        SELECT v_stamp AS t WHERE NOT p_validate_only),
    cur AS MATERIALIZED (
        SELECT n.ord, n.key, n.period::sdmx_period AS period, n.value::numeric AS value,
               n.status, n.comment, n.source, n.deleted, v.ctid AS v_ctid, v.value AS v_value,
               v.known_from AS v_known_from,
               CASE WHEN v.indicator_key IS NULL THEN CASE WHEN n.deleted THEN 'N' ELSE 'I' END
                    WHEN v.known_from = v_stamp THEN 'J'
                    WHEN v.deleted THEN CASE WHEN n.deleted THEN 'N' ELSE 'X' END
                    WHEN n.deleted THEN 'D'
                    WHEN v.value IS NOT DISTINCT FROM n.value::numeric AND v.status = n.status
                         AND v.comment = n.comment AND v.source = n.source THEN 'U'
                    ELSE 'R' END AS action
          FROM unnest(v_keys, p_periods, p_values, p_statuses, p_comments, p_sources, p_deleted)
               WITH ORDINALITY AS n(key, period, value, status, comment, source, deleted, ord)
          -- One index lookup per row (OFFSET 0 keeps it a lookup, not a join the planner
          -- may turn into a scan).
          LEFT JOIN LATERAL (
              SELECT v.ctid, v.indicator_key, v.value, v.status, v.comment, v.source,
                     v.deleted, v.known_from
                FROM observation_versions v
               WHERE v.indicator_key = n.key AND v.period = n.period::sdmx_period
                 AND v.known_until IS NULL
              OFFSET 0) v ON true),
    go AS MATERIALIZED (
        SELECT EXISTS (SELECT 1 FROM stamp)
               AND count(*) FILTER (WHERE action IN ('I', 'J', 'X', 'R', 'D')) > 0
               AND count(*) FILTER (WHERE action = 'N') = 0 AS ok
          FROM cur),
    closed AS (
        UPDATE observation_versions v SET known_until = s.t
          FROM cur c, stamp s
         WHERE (SELECT ok FROM go) AND c.action IN ('R', 'X', 'D') AND v.ctid = c.v_ctid
        RETURNING 1),
    added AS (
        INSERT INTO observation_versions
               (indicator_key, period, value, status, comment, source, deleted, known_from)
        SELECT c.key, c.period, c.value, c.status, c.comment, c.source, c.deleted, s.t
          FROM cur c, stamp s
         WHERE (SELECT ok FROM go) AND c.action IN ('I', 'X', 'R', 'D')
           AND (SELECT count(*) FROM closed) >= 0
        RETURNING 1),
    audit AS (
        INSERT INTO audit_events (actor, method, resource, action, request_id, after)
        SELECT nullif(p_actor, ''), p_method, 'indicators/' || p_ids[min(c.ord)] || '/observations',
               'IMPORT', p_request_id,
               jsonb_build_object('known_from', (SELECT t FROM stamp),
                   'inserted', count(*) FILTER (WHERE c.action IN ('I', 'J', 'X')),
                   'revised', count(*) FILTER (WHERE c.action = 'R'),
                   'deleted', count(*) FILTER (WHERE c.action = 'D'),
                   'unchanged', count(*) FILTER (WHERE c.action = 'U'))
          FROM cur c
         WHERE (SELECT ok FROM go) AND (SELECT count(*) FROM added) >= 0
         GROUP BY c.key
         ORDER BY 3
        RETURNING 1),
    claim AS (
        INSERT INTO idempotency_keys (request_id, method, fingerprint, response)
        SELECT p_claim, p_claim_method, p_fingerprint, convert_to(jsonb_build_object(
                   'counts', jsonb_build_object(
                       'inserted', count(*) FILTER (WHERE c.action IN ('I', 'J', 'X')),
                       'revised', count(*) FILTER (WHERE c.action = 'R'),
                       'unchanged', count(*) FILTER (WHERE c.action = 'U'),
                       'deleted', count(*) FILTER (WHERE c.action = 'D')),
                   'commit_time_us',
                   CASE WHEN (SELECT ok FROM go)
                        THEN (SELECT (extract(epoch FROM t) * 1000000)::bigint FROM stamp) END)::text,
                   'UTF8')
          FROM cur c
         WHERE p_claim IS NOT NULL AND NOT p_validate_only AND (SELECT count(*) FROM audit) >= 0
        HAVING count(*) > 0 AND count(*) FILTER (WHERE c.action = 'N') = 0
        RETURNING 1)
    SELECT c.ord::integer, c.action,
           CASE WHEN c.action = 'U' THEN c.v_value ELSE c.value END::text,
           c.status, c.comment, c.source, c.deleted,
           CASE WHEN c.action = 'U' THEN c.v_known_from ELSE (SELECT t FROM stamp) END,
           NULL::text, NULL::bytea
      FROM cur c
     WHERE (SELECT count(*) FROM claim) >= 0
       -- Last, the deadline: a write past it rolls back (TW002) instead of committing.
       AND (p_validate_only OR clock_timestamp() <= v_deadline OR observations_past_deadline());
END $$;

-- Raised by a write that reaches its deadline before it commits: it rolls back, so that
-- DEADLINE_EXCEEDED from the service means nothing was written (a plain expression
-- cannot raise).
CREATE FUNCTION observations_past_deadline() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the write reached its deadline before it could commit'
        USING ERRCODE = 'TW002';
END $$;

-- Staging tables of imports: one UNLOGGED table per import, filled by autocommit COPYs
-- while the client streams (so that a slow client holds no transaction open and does
-- not hold back the stable horizon), merged by observations_merge_staged() in one
-- statement, then dropped. Names are import_{unix seconds}_{random hex}: the service
-- drops those older than a day (left behind by a server that died mid-import).
CREATE SCHEMA tradewatch_staging;

-- Imports whose client went away while their merge ran (a client that cancels a
-- client-streaming call ends its stream, then resets it): the merge looks here just
-- before it commits and rolls back instead. Rows are removed once the merge has ended.
CREATE UNLOGGED TABLE tradewatch_staging.cancelled (
    staging     text PRIMARY KEY,
    cancel_time timestamptz NOT NULL DEFAULT now()
);

-- The merge of an import: everything in one statement (one transaction), in order:
-- the staged row count (an unlogged table is emptied by a database crash), duplicates
-- (when the service did not check them itself), a replay of the request id, the head
-- locks (sorted, so two imports never deadlock), the stamp, the revisions closed, the
-- versions added, one audit event per indicator, a last check of the deadline and of a
-- cancellation, and the request id's claim. p_keys lists the indicators staged, with p_key_rows rows each.
CREATE FUNCTION observations_merge_staged(
    p_staging regclass, p_rows bigint, p_keys integer[], p_key_rows bigint[],
    p_check_duplicates boolean, p_validate_only boolean,
    p_actor text, p_method text, p_request_id text,
    p_claim uuid, p_claim_method text, p_fingerprint bytea, p_deadline_ms integer)
RETURNS TABLE (r_outcome text, r_inserted bigint, r_revised bigint, r_unchanged bigint,
               r_known_from timestamptz, r_idx bigint, r_first bigint, r_stored bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_deadline timestamptz := statement_timestamp() + p_deadline_ms * interval '1 millisecond';
    v_rows     bigint;
    v_locked   bigint;
    v_existing integer[];
    v_stamp    timestamptz;
    -- Per indicator (aligned with p_keys): revised, re-created after a deletion, added.
    v_revised  bigint[];
    v_recreated bigint[];
    v_added    bigint[];
    v_inserted bigint := 0;
    v_rev      bigint := 0;
    v_unchanged bigint := 0;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', p_staging) INTO v_rows;
    IF v_rows <> p_rows THEN
        RAISE EXCEPTION 'the import staged % rows but % were sent', v_rows, p_rows
            USING ERRCODE = 'TW003';
    END IF;
    IF p_check_duplicates THEN
        RETURN QUERY EXECUTE format(
            'SELECT ''duplicate'', NULL::bigint, NULL::bigint, NULL::bigint, NULL::timestamptz,
                    s.idx, d.first_idx, NULL::bytea
               FROM %1$s s
               JOIN (SELECT indicator_key, period, min(idx) AS first_idx FROM %1$s
                      GROUP BY indicator_key, period HAVING count(*) > 1) d
                 USING (indicator_key, period)
              WHERE s.idx <> d.first_idx ORDER BY s.idx LIMIT 100', p_staging);
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF p_claim IS NOT NULL AND NOT p_validate_only THEN
        RETURN QUERY
            SELECT CASE WHEN k.method = p_claim_method AND k.fingerprint = p_fingerprint
                        THEN 'replay' ELSE 'reused' END,
                   NULL::bigint, NULL::bigint, NULL::bigint, NULL::timestamptz,
                   NULL::bigint, NULL::bigint, k.response
              FROM idempotency_keys k WHERE k.request_id = p_claim;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF p_validate_only THEN
        RETURN QUERY EXECUTE format(
            'SELECT ''validated'',
                    count(*) FILTER (WHERE v.indicator_key IS NULL OR v.deleted),
                    count(*) FILTER (WHERE NOT v.deleted AND (v.value IS DISTINCT FROM s.value
                        OR v.status <> s.status OR v.comment <> s.comment OR v.source <> s.source)),
                    count(*) FILTER (WHERE NOT v.deleted AND v.value IS NOT DISTINCT FROM s.value
                        AND v.status = s.status AND v.comment = s.comment AND v.source = s.source),
                    NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::bytea
               FROM %s s LEFT JOIN observation_versions v
                 ON v.indicator_key = ANY($1) AND v.indicator_key = s.indicator_key
                AND v.period = s.period AND v.known_until IS NULL', p_staging)
            USING p_keys;
        RETURN;
    END IF;

    -- Locks: the heads of every indicator written to, in key order. A lock wait ends at
    -- the deadline (lock_timeout, local to this transaction).
    PERFORM set_config('lock_timeout',
        greatest(1, ceil(extract(epoch FROM v_deadline - clock_timestamp()) * 1000))::bigint::text, true);
    PERFORM 1 FROM observation_heads WHERE indicator_key = ANY(p_keys)
      ORDER BY indicator_key FOR UPDATE;
    GET DIAGNOSTICS v_locked = ROW_COUNT;
    IF v_locked <> cardinality(p_keys) THEN
        RAISE EXCEPTION 'an indicator of the import was deleted meanwhile'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_versions_indicator_fkey';
    END IF;

    -- From here on every statement sees the writers that committed before the locks.
    -- The stamp: after the locks (and after this transaction got its id), later than
    -- every version known, so that it supersedes what it replaces even if the clock
    -- stepped back.
    v_stamp := greatest(clock_timestamp(),
                        (SELECT max(known_from) FROM observation_versions) + interval '1 microsecond');

    -- Indicators that already have current versions: only their rows need comparing.
    SELECT coalesce(array_agg(k), '{}') INTO v_existing
      FROM unnest(p_keys) AS k
     WHERE EXISTS (SELECT 1 FROM observation_versions v
                    WHERE v.indicator_key = k AND v.known_until IS NULL);

    v_revised := array_fill(0::bigint, ARRAY[cardinality(p_keys)]);
    v_recreated := v_revised;
    v_added := v_revised;
    IF cardinality(v_existing) > 0 THEN
        EXECUTE format(
            'WITH closed AS (
                 UPDATE observation_versions v SET known_until = $1
                   FROM %s s
                  WHERE s.indicator_key = ANY($2) AND v.indicator_key = ANY($2)
                    AND v.indicator_key = s.indicator_key AND v.period = s.period
                    AND v.known_until IS NULL
                    AND (v.deleted OR v.value IS DISTINCT FROM s.value OR v.status <> s.status
                         OR v.comment <> s.comment OR v.source <> s.source)
              RETURNING v.indicator_key, v.deleted)
             SELECT array_agg(coalesce(r, 0) ORDER BY o), array_agg(coalesce(x, 0) ORDER BY o)
               FROM unnest($3::integer[]) WITH ORDINALITY AS k(key, o)
               LEFT JOIN (SELECT indicator_key, count(*) FILTER (WHERE NOT deleted) AS r,
                                 count(*) FILTER (WHERE deleted) AS x
                            FROM closed GROUP BY indicator_key) c ON c.indicator_key = k.key',
            p_staging)
            INTO v_revised, v_recreated USING v_stamp, v_existing, p_keys;
        EXECUTE format(
            'WITH added AS (
                 INSERT INTO observation_versions
                        (indicator_key, period, value, status, comment, source, deleted, known_from)
                 SELECT s.indicator_key, s.period, s.value, s.status, s.comment, s.source, false, $1
                   FROM %s s
                  WHERE s.indicator_key = ANY($2)
                    AND NOT EXISTS (SELECT 1 FROM observation_versions v
                                     WHERE v.indicator_key = ANY($2)
                                       AND v.indicator_key = s.indicator_key AND v.period = s.period
                                       AND v.known_until IS NULL)
              RETURNING indicator_key)
             SELECT array_agg(coalesce(n, 0) ORDER BY o)
               FROM unnest($3::integer[]) WITH ORDINALITY AS k(key, o)
               LEFT JOIN (SELECT indicator_key, count(*) AS n FROM added GROUP BY indicator_key) a
                 ON a.indicator_key = k.key',
            p_staging)
            INTO v_added USING v_stamp, v_existing, p_keys;
    END IF;
    -- Indicators without current versions: every staged row is new.
    EXECUTE format(
        'INSERT INTO observation_versions
                (indicator_key, period, value, status, comment, source, deleted, known_from)
         SELECT s.indicator_key, s.period, s.value, s.status, s.comment, s.source, false, $1
           FROM %s s
          WHERE NOT (s.indicator_key = ANY($2))', p_staging)
        USING v_stamp, v_existing;

    -- Per indicator: inserted = added - revised; unchanged = rows - added; for an
    -- indicator without current versions, added = rows.
    SELECT coalesce(sum(CASE WHEN k.key = ANY(v_existing) THEN k.added - k.revised ELSE k.total END), 0),
           coalesce(sum(k.revised), 0),
           coalesce(sum(CASE WHEN k.key = ANY(v_existing) THEN k.total - k.added ELSE 0 END), 0)
      INTO v_inserted, v_rev, v_unchanged
      FROM unnest(p_keys, p_key_rows, v_revised, v_added) AS k(key, total, revised, added);

    IF v_inserted + v_rev > 0 THEN
        INSERT INTO audit_events (actor, method, resource, action, request_id, after)
        SELECT p_actor, p_method, 'indicators/' || i.indicator_id || '/observations', 'IMPORT',
               p_request_id,
               jsonb_build_object('known_from', v_stamp,
                   'inserted', CASE WHEN k.key = ANY(v_existing) THEN k.added - k.revised ELSE k.total END,
                   'revised', k.revised, 'deleted', 0,
                   'unchanged', CASE WHEN k.key = ANY(v_existing) THEN k.total - k.added ELSE 0 END)
          FROM unnest(p_keys, p_key_rows, v_revised, v_added) AS k(key, total, revised, added)
          JOIN indicators i ON i.indicator_key = k.key
         ORDER BY i.indicator_id;
    ELSE
        v_stamp := NULL;
    END IF;
    IF clock_timestamp() > v_deadline THEN
        PERFORM observations_past_deadline();
    END IF;
    IF EXISTS (SELECT 1 FROM tradewatch_staging.cancelled WHERE staging = p_staging::text) THEN
        RAISE EXCEPTION 'the client cancelled the import before it committed'
            USING ERRCODE = 'query_canceled';
    END IF;
    IF p_claim IS NOT NULL THEN
        INSERT INTO idempotency_keys (request_id, method, fingerprint, response)
        VALUES (p_claim, p_claim_method, p_fingerprint,
                convert_to(jsonb_build_object(
                    'counts', jsonb_build_object('inserted', v_inserted, 'revised', v_rev,
                                                 'unchanged', v_unchanged, 'deleted', 0),
                    'commit_time_us', (extract(epoch FROM v_stamp) * 1000000)::bigint)::text, 'UTF8'));
    END IF;
    RETURN QUERY SELECT 'merged', v_inserted, v_rev, v_unchanged, v_stamp,
                        NULL::bigint, NULL::bigint, NULL::bytea;
END $$;
