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

-- One row per indicator: observation writers lock it (and bump `writes`) for the length
-- of their transaction, which serialises writers of the same indicator and nobody else.
-- A batch write is one statement whose snapshot is taken before it waits for the lock;
-- comparing `writes` as its snapshot saw it with the value it locked tells it whether a
-- writer of the same indicator committed in between (then it retries; see
-- src/store/observations.rs).
CREATE TABLE observation_heads (
    indicator_key integer PRIMARY KEY
        REFERENCES indicators (indicator_key) ON DELETE CASCADE,
    writes        bigint NOT NULL DEFAULT 0
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

-- Raised inside a batch write's statement (a plain function call cannot raise): a writer
-- of the same indicator committed after the statement's snapshot was taken, so its
-- classification may be stale; nothing was written and the service retries at once.
CREATE FUNCTION observations_stale() RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a concurrent write to the same indicator committed first'
        USING ERRCODE = 'TW001';
END $$;

-- Raised by a write that reaches its deadline before it commits: it rolls back, so that
-- DEADLINE_EXCEEDED from the service means nothing was written.
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
    UPDATE observation_heads SET writes = writes + 1 WHERE indicator_key = ANY(p_keys);
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
