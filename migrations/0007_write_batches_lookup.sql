-- The grouped write (observations_write_batches, migration 0006) found its indicators
-- with `indicator_id = ANY(p_ids)`, p_ids holding one id per row. Planned generically
-- with sequential scans off, that became a scan of every indicator in key order with the
-- test as a filter: (indicators) x (rows) comparisons per call, 96 x 80 for 8 batches of
-- 10 rows in bench/writes.sh (6 % of PostgreSQL's time there under perf), and growing
-- with every indicator created. It now looks up each distinct id in the primary key, and
-- sorts the few heads it found by key before locking them. Nothing else changes.
CREATE OR REPLACE FUNCTION observations_write_batches(
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
    -- The distinct indicators whose heads this call holds, in key order.
    v_ids      text[];
    v_heads    integer[];
    v_freqs    text[];
    -- Per row: its indicator's key; whether every row's indicator is held and of the
    -- row's frequency.
    v_keys     integer[];
    v_ok       boolean;
    -- Whether any batch has a request id (most have none: two statements fewer).
    v_claimed  boolean := array_remove(p_claims, NULL) <> '{}';
    v_stamp    timestamptz;
BEGIN
    -- Locking a head also gives the transaction its id, before anything is stamped (see
    -- docs/consistency.md). A head another writer holds is skipped: the call then goes
    -- alone, and the service writes its batches one by one.
    SELECT array_agg(x.id ORDER BY x.key), array_agg(x.key ORDER BY x.key),
           array_agg(x.freq ORDER BY x.key)
      INTO v_ids, v_heads, v_freqs
      FROM (SELECT i.indicator_id::text AS id, h.indicator_key AS key, i.frequency AS freq
              FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id)) d
              JOIN indicators i ON i.indicator_id = d.id
              JOIN observation_heads h ON h.indicator_key = i.indicator_key
             ORDER BY h.indicator_key
               FOR UPDATE OF h SKIP LOCKED) x;
    SELECT array_agg(v_heads[r.pos] ORDER BY r.ord),
           coalesce(bool_and(r.pos IS NOT NULL AND v_freqs[r.pos] = r.freq), false)
      INTO v_keys, v_ok
      FROM (SELECT u.ord, u.freq, array_position(v_ids, u.id) AS pos
              FROM unnest(p_ids, p_frequencies) WITH ORDINALITY AS u(id, freq, ord)) r;
    IF NOT v_ok
       OR (v_claimed
           AND EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.request_id = ANY(p_claims))) THEN
        RETURN QUERY SELECT 'alone'::text, NULL::timestamptz;
        RETURN;
    END IF;
    v_stamp := greatest(clock_timestamp(),
                        observations_latest_known_from() + interval '1 microsecond');
    INSERT INTO observation_versions
           (indicator_key, period, value, status, comment, source, deleted, known_from)
    SELECT n.key, n.period, n.value::numeric, n.status, n.comment, n.source, false, v_stamp
      FROM unnest(v_keys, p_periods, p_values, p_statuses, p_comments, p_sources)
           AS n(key, period, value, status, comment, source);
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
    IF v_claimed THEN
        INSERT INTO idempotency_keys (request_id, method, fingerprint, response)
        SELECT p_claims[k.c], p_claim_methods[k.c], p_fingerprints[k.c],
               convert_to(jsonb_build_object(
                   'counts', jsonb_build_object('inserted', count(*), 'revised', 0,
                                                'unchanged', 0, 'deleted', 0),
                   'commit_time_us', (extract(epoch FROM v_stamp) * 1000000)::bigint)::text,
                   'UTF8')
          FROM unnest(p_calls) AS k(c)
         WHERE p_claims[k.c] IS NOT NULL
         GROUP BY k.c;
    END IF;
    RETURN QUERY SELECT 'written'::text, v_stamp;
END $$;
