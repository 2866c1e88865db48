-- Imports without a feed index entry per row (docs/consistency.md, "The change feed").
--
-- The change feed reads versions in (known_from, indicator_key, period) order. Until
-- now one btree index on those columns held every version: on an import, whose rows
-- are all new, it cost a quarter of the database's time (COPY of 300,000 rows: 0.82-0.95 s
-- with it, 0.61-0.69 s without, against 0.61-0.70 s for psql \copy into a table keyed
-- on (indicator, period)).
--
-- From here on, the versions that an import adds with COPY for an indicator that had no
-- observation (most of a load) are marked `bulk` and left out of that index; the
-- import records one row per such indicator in observation_bulk instead: (its stamp,
-- the indicator). The feed finds those versions through observation_bulk and the unique
-- key (indicator_key, …): they are all the versions of that indicator with that stamp.
-- Every other version (batch writes, and an import's rows for indicators that already
-- had observations) stays in the index.
ALTER TABLE observation_versions ADD COLUMN bulk boolean NOT NULL DEFAULT false;

CREATE TABLE observation_bulk (
    known_from    timestamptz NOT NULL,
    indicator_key integer NOT NULL REFERENCES indicators (indicator_key) ON DELETE CASCADE,
    -- How many versions: the feed reads as many of these groups as make up one page.
    versions      bigint NOT NULL CHECK (versions > 0),
    PRIMARY KEY (known_from, indicator_key)
);
-- The cascade from indicators.
CREATE INDEX observation_bulk_indicator ON observation_bulk (indicator_key);

CREATE INDEX observation_versions_feed_rows
    ON observation_versions (known_from, indicator_key, period) WHERE NOT bulk;
DROP INDEX observation_versions_feed;

-- The latest known_from of all versions (a write stamps later than it): one step down
-- each of the two indexes.
CREATE FUNCTION observations_latest_known_from() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT greatest((SELECT max(v.known_from) FROM observation_versions v WHERE NOT v.bulk),
                    (SELECT max(b.known_from) FROM observation_bulk b))
$$;

-- The batch write functions of migration 0004 stamp after
-- `(SELECT max(v.known_from) FROM observation_versions v)`, which the feed index
-- answered; they now ask observations_latest_known_from(). Rewritten in place (their
-- definitions are otherwise unchanged, and repeating 250 lines here would let the two
-- copies drift); the migration fails if a definition does not read as expected.
DO $$
DECLARE
    f   text;
    def text;
BEGIN
    FOREACH f IN ARRAY ARRAY['observations_write_batch', 'observations_write_batches'] LOOP
        SELECT pg_get_functiondef(p.oid) INTO def FROM pg_proc p WHERE p.proname = f;
        IF position('(SELECT max(v.known_from) FROM observation_versions v)' IN def) = 0 THEN
            RAISE EXCEPTION 'function % does not read the latest known_from as expected', f;
        END IF;
        EXECUTE replace(def, '(SELECT max(v.known_from) FROM observation_versions v)',
                        'observations_latest_known_from()');
    END LOOP;
END $$;
