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

-- Periods of versions are checked by the service (every write parses them) and here for
-- their shape only: the sdmx_period domain's regular expression cost a quarter of an
-- import's inserts. Byte order ("C" collation) as before.
ALTER TABLE observation_versions ALTER COLUMN period TYPE text COLLATE "C",
    ADD CONSTRAINT observation_versions_period_shape CHECK (octet_length(period) IN (4, 7, 8));
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
--    transaction its id, before anything is stamped: see docs/consistency.md); when
--    another writer holds one, write nothing and answer 'busy': the service tries again
--    shortly, so that no writer waits in the database, holding a connection, for
--    another;
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
    -- A head another writer holds is skipped, not waited for (see below).
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
                   FOR UPDATE OF h SKIP LOCKED) x;
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
        IF NOT FOUND THEN
            -- Another writer holds a head: write nothing and say so at once (the service
            -- tries again shortly), rather than wait here holding a connection.
            RETURN QUERY SELECT NULL::integer, 'busy', NULL::text, NULL::text, NULL::text,
                                NULL::text, NULL::boolean, NULL::timestamptz, NULL::text,
                                NULL::bytea;
        END IF;
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
        SELECT n.key, n.period, n.value::numeric, n.status, n.comment, n.source,
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
        SELECT n.ord, n.key, n.period AS period, n.value::numeric AS value,
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
               WHERE v.indicator_key = n.key AND v.period = n.period
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

-- Several batch writes of different callers in one call (the service groups the batches
-- that arrive while its writers are busy: src/store/observations.rs, BatchWriter), for
-- the usual case of new observations only. p_calls gives each row's batch (1-based);
-- the per-batch arrays its caller and request id. Everything is written in one
-- transaction with one stamp, and each batch gets its own audit events and claim, as if
-- it had come alone. When any batch would not be written as it is (an unknown indicator,
-- a period of another frequency, a request id used before, a row with a current version,
-- a head another writer holds), nothing is written and the result is 'alone': the
-- service then writes each batch with observations_write_batch(). Same plan pinning as
-- there.
CREATE FUNCTION observations_write_batches(
    p_calls integer[], p_ids text[], p_periods text[], p_frequencies text[], p_values text[],
    p_statuses text[], p_comments text[], p_sources text[], p_actors text[],
    p_methods text[], p_request_ids text[], p_claims uuid[], p_claim_methods text[],
    p_fingerprints bytea[], p_deadline_ms integer)
RETURNS TABLE (outcome text, known_from timestamptz)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_deadline timestamptz := statement_timestamp() + p_deadline_ms * interval '1 millisecond';
    v_keys     integer[];
    v_freqs    text[];
    v_stamp    timestamptz;
    v_added    bigint;
BEGIN
    SELECT array_agg(x.key ORDER BY x.ord), array_agg(x.freq ORDER BY x.ord)
      INTO v_keys, v_freqs
      FROM (SELECT u.ord, h.indicator_key AS key, i.frequency AS freq
              FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
              JOIN indicators i ON i.indicator_id = u.id
              JOIN observation_heads h ON h.indicator_key = i.indicator_key
             ORDER BY h.indicator_key
               FOR UPDATE OF h SKIP LOCKED) x;
    IF v_freqs IS DISTINCT FROM p_frequencies
       OR EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.request_id = ANY(p_claims)) THEN
        RETURN QUERY SELECT 'alone'::text, NULL::timestamptz;
        RETURN;
    END IF;
    v_stamp := greatest(clock_timestamp(),
                        (SELECT max(v.known_from) FROM observation_versions v)
                            + interval '1 microsecond');
    INSERT INTO observation_versions
           (indicator_key, period, value, status, comment, source, deleted, known_from)
    SELECT n.key, n.period, n.value::numeric, n.status, n.comment, n.source, false, v_stamp
      FROM unnest(v_keys, p_periods, p_values, p_statuses, p_comments, p_sources)
           AS n(key, period, value, status, comment, source)
        ON CONFLICT ON CONSTRAINT observation_versions_key DO NOTHING;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    IF v_added <> cardinality(p_ids) THEN
        -- Some rows have a current version: undo (the exception rolls this call back).
        RAISE EXCEPTION 'not only new observations' USING ERRCODE = 'TW006';
    END IF;
    INSERT INTO audit_events (actor, method, resource, action, request_id, after)
    SELECT nullif(p_actors[k.c], ''), p_methods[k.c],
           'indicators/' || p_ids[min(k.ord)] || '/observations', 'IMPORT', p_request_ids[k.c],
           jsonb_build_object('known_from', v_stamp, 'inserted', count(*), 'revised', 0,
                              'deleted', 0, 'unchanged', 0)
      FROM unnest(p_calls, v_keys) WITH ORDINALITY AS k(c, key, ord)
     GROUP BY k.c, k.key
     ORDER BY k.c, 3;
    IF clock_timestamp() > v_deadline THEN
        PERFORM observations_past_deadline();
    END IF;
    INSERT INTO idempotency_keys (request_id, method, fingerprint, response)
    SELECT p_claims[k.c], p_claim_methods[k.c], p_fingerprints[k.c],
           convert_to(jsonb_build_object(
               'counts', jsonb_build_object('inserted', count(*), 'revised', 0,
                                            'unchanged', 0, 'deleted', 0),
               'commit_time_us', (extract(epoch FROM v_stamp) * 1000000)::bigint)::text, 'UTF8')
      FROM unnest(p_calls) AS k(c)
     WHERE p_claims[k.c] IS NOT NULL
     GROUP BY k.c;
    RETURN QUERY SELECT 'written'::text, v_stamp;
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

-- Every observation write holds the head of each indicator it writes to, and a head
-- references its indicator: a version can only be added for an indicator that exists,
-- and an indicator cannot be deleted under a write (the head's cascade waits for it, and
-- observation_heads_without_observations then refuses). The statement-level check of
-- migration 0002 said the same once more, at the cost of a transition table of every
-- inserted row: a fifth of an import's time.
DROP TRIGGER observation_versions_indicator_exists ON observation_versions;
DROP FUNCTION observation_versions_indicator_exists();

-- One chunk of an import (ImportObservations), in the import's own transaction: see
-- Import in src/store/observations.rs. The import stamps all its versions with one
-- instant, p_stamp, taken when it began (after its transaction got its id), and locks
-- the heads of the indicators as its chunks reach them. A version it would supersede
-- that is later than p_stamp was written by a concurrent writer after the import began:
-- the import cannot supersede it with an earlier instant, and fails (TW004; nothing is
-- written, the client sends it again). A current version at p_stamp that this chunk did
-- not add comes from an earlier chunk: the same observation twice (TW005). Returns, per
-- indicator of the chunk, the rows inserted (new, or re-created after a deletion),
-- revised and unchanged. With p_validate_only, classifies only (no locks, no writes).
CREATE FUNCTION observations_import_chunk(
    p_stamp timestamptz, p_keys integer[], p_periods text[], p_values text[],
    p_statuses text[], p_comments text[], p_sources text[], p_validate_only boolean)
RETURNS TABLE (r_key integer, r_inserted bigint, r_revised bigint, r_unchanged bigint)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_added integer;
    -- The command that added the new rows (their cmin): a current version at p_stamp
    -- with another cmin was added by an earlier chunk.
    v_cmin text;
BEGIN
    IF NOT p_validate_only THEN
        PERFORM 1 FROM observation_heads
          WHERE indicator_key IN (SELECT DISTINCT unnest(p_keys))
          ORDER BY indicator_key FOR UPDATE;
        -- New observations, most of a load, are added as they are; the unique key
        -- refuses those with a current version, classified below.
        WITH added AS (
            INSERT INTO observation_versions
                   (indicator_key, period, value, status, comment, source, deleted, known_from)
            SELECT n.key, n.period, n.value::numeric, n.status, n.comment,
                   n.source, false, p_stamp
              FROM unnest(p_keys, p_periods, p_values, p_statuses, p_comments, p_sources)
                   AS n(key, period, value, status, comment, source)
                ON CONFLICT ON CONSTRAINT observation_versions_key DO NOTHING
            RETURNING cmin)
        SELECT count(*), min(cmin::text) INTO v_added, v_cmin FROM added;
        IF v_added = cardinality(p_keys) THEN
            RETURN QUERY SELECT k, count(*), 0::bigint, 0::bigint
                           FROM unnest(p_keys) AS k GROUP BY k;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    WITH cur AS MATERIALIZED (
        SELECT n.key, n.period AS period, n.value::numeric AS value, n.status,
               n.comment, n.source, v.ctid AS v_ctid,
               CASE WHEN v.indicator_key IS NULL THEN 'I'
                    WHEN v.known_from = p_stamp AND v.cmin::text = v_cmin THEN 'J'
                    WHEN v.known_from > p_stamp THEN 'C'
                    WHEN v.known_from = p_stamp THEN 'T'
                    WHEN v.deleted THEN 'X'
                    WHEN v.value IS NOT DISTINCT FROM n.value::numeric AND v.status = n.status
                         AND v.comment = n.comment AND v.source = n.source THEN 'U'
                    ELSE 'R' END AS action
          FROM unnest(p_keys, p_periods, p_values, p_statuses, p_comments, p_sources)
               AS n(key, period, value, status, comment, source)
          LEFT JOIN LATERAL (
              SELECT v.ctid, v.cmin, v.indicator_key, v.value, v.status, v.comment, v.source,
                     v.deleted, v.known_from
                FROM observation_versions v
               WHERE v.indicator_key = n.key AND v.period = n.period
                 AND v.known_until IS NULL
              OFFSET 0) v ON true),
    checked AS MATERIALIZED (
        SELECT CASE WHEN count(*) FILTER (WHERE action = 'C') > 0
                    THEN observations_import_conflict()
                    WHEN count(*) FILTER (WHERE action = 'T') > 0
                    THEN observations_import_repeat()
                    ELSE true END AS ok
          FROM cur),
    closed AS (
        UPDATE observation_versions v SET known_until = p_stamp
          FROM cur c
         WHERE NOT p_validate_only AND (SELECT ok FROM checked)
           AND c.action IN ('R', 'X') AND v.ctid = c.v_ctid
        RETURNING 1),
    added AS (
        INSERT INTO observation_versions
               (indicator_key, period, value, status, comment, source, deleted, known_from)
        SELECT c.key, c.period, c.value, c.status, c.comment, c.source, false, p_stamp
          FROM cur c
         WHERE NOT p_validate_only AND (SELECT ok FROM checked)
           AND c.action IN ('I', 'X', 'R') AND (SELECT count(*) FROM closed) >= 0
        RETURNING 1)
    SELECT c.key,
           count(*) FILTER (WHERE c.action IN ('I', 'J', 'X')),
           count(*) FILTER (WHERE c.action = 'R'),
           count(*) FILTER (WHERE c.action = 'U')
      FROM cur c
     WHERE (SELECT count(*) FROM added) >= 0 AND (SELECT ok FROM checked)
     GROUP BY c.key;
END $$;

CREATE FUNCTION observations_import_conflict() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an indicator of the import was written to by another call after the import began'
        USING ERRCODE = 'TW004';
END $$;

CREATE FUNCTION observations_import_repeat() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the import names the same observation twice'
        USING ERRCODE = 'TW005';
END $$;

-- The end of an import, just before its commit: one audit event per indicator written
-- to (p_keys with their counts), a last check of the deadline, and the request id's
-- claim with the result.
CREATE FUNCTION observations_import_finish(
    p_stamp timestamptz, p_keys integer[], p_inserted bigint[], p_revised bigint[],
    p_unchanged bigint[], p_actor text, p_method text, p_request_id text,
    p_claim uuid, p_claim_method text, p_fingerprint bytea, p_deadline_ms integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_changed bigint;
BEGIN
    SELECT coalesce(sum(i), 0) + coalesce(sum(r), 0) INTO v_changed
      FROM unnest(p_inserted, p_revised) AS x(i, r);
    IF v_changed > 0 THEN
        INSERT INTO audit_events (actor, method, resource, action, request_id, after)
        SELECT nullif(p_actor, ''), p_method, 'indicators/' || i.indicator_id || '/observations',
               'IMPORT', p_request_id,
               jsonb_build_object('known_from', p_stamp, 'inserted', k.ins, 'revised', k.rev,
                                  'deleted', 0, 'unchanged', k.unch)
          FROM unnest(p_keys, p_inserted, p_revised, p_unchanged) AS k(key, ins, rev, unch)
          JOIN indicators i ON i.indicator_key = k.key
         ORDER BY i.indicator_id;
    END IF;
    IF clock_timestamp() > statement_timestamp() + p_deadline_ms * interval '1 millisecond' THEN
        PERFORM observations_past_deadline();
    END IF;
    IF p_claim IS NOT NULL THEN
        INSERT INTO idempotency_keys (request_id, method, fingerprint, response)
        SELECT p_claim, p_claim_method, p_fingerprint, convert_to(jsonb_build_object(
                   'counts', jsonb_build_object(
                       'inserted', coalesce(sum(i), 0), 'revised', coalesce(sum(r), 0),
                       'unchanged', coalesce(sum(u), 0), 'deleted', 0),
                   'commit_time_us', CASE WHEN v_changed > 0
                                          THEN (extract(epoch FROM p_stamp) * 1000000)::bigint END
               )::text, 'UTF8')
          FROM unnest(p_inserted, p_revised, p_unchanged) AS x(i, r, u);
    END IF;
END $$;
