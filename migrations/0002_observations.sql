-- Observations: every published figure with its revisions (bitemporal).
--
-- A row is one *version* of one observation (indicator, period): the value that was the
-- published one from `known_from` until `known_until` (NULL while it still is). A
-- revision closes the current version and adds a new one; a deletion adds a tombstone
-- version (`deleted`). Nothing is ever overwritten or removed, so any read can be re-run
-- "as it was known" at a past instant.
--
-- Writes are sequenced into `observation_commits`: each writing transaction takes an
-- advisory lock just before it commits its merge, numbers itself (gapless, in commit
-- order) and stamps `known_from` with a time that never goes backwards. The change feed
-- (WatchObservations) and delta sync follow that number, so a client that resumes from
-- a cursor misses nothing and sees nothing twice.

-- A compact key for indicators, used by the (large) observation tables instead of the
-- text id.
ALTER TABLE indicators ADD COLUMN indicator_key integer GENERATED ALWAYS AS IDENTITY;
ALTER TABLE indicators ADD CONSTRAINT indicators_indicator_key_key UNIQUE (indicator_key);

CREATE TABLE observation_commits (
    seq         bigint PRIMARY KEY,
    commit_time timestamptz NOT NULL,
    -- Which method wrote it, and how many versions it added (for operators).
    method      text NOT NULL,
    versions    bigint NOT NULL
);

CREATE TABLE observation_versions (
    -- References indicators (indicator_key); enforced set-based by the statement-level
    -- triggers below rather than by a foreign key, whose row-by-row checks cost a third
    -- of a million-row import.
    indicator_key integer NOT NULL,
    period        sdmx_period NOT NULL,
    -- NULL for tombstones and for SDMX "missing" statuses (M, O, L, H, Q).
    value         numeric,
    -- SDMX OBS_STATUS code.
    status        text NOT NULL
        CHECK (status IN ('A', 'B', 'D', 'E', 'F', 'G', 'H', 'I', 'L', 'M', 'N', 'O', 'P', 'Q', 'S', 'U', 'V')),
    comment       text NOT NULL DEFAULT '' CHECK (char_length(comment) <= 1000),
    source        text NOT NULL DEFAULT '' CHECK (char_length(source) <= 200),
    deleted       boolean NOT NULL DEFAULT false,
    known_from    timestamptz NOT NULL,
    known_until   timestamptz,
    -- The observation_commits row of the transaction that wrote it (same transaction,
    -- so no foreign key: that would cost a lookup per row on bulk loads).
    commit_seq    bigint NOT NULL,
    PRIMARY KEY (indicator_key, period, known_from),
    CONSTRAINT observation_versions_interval CHECK (known_until IS NULL OR known_until > known_from),
    CONSTRAINT observation_versions_tombstone CHECK (NOT deleted OR value IS NULL),
    CONSTRAINT observation_versions_value_or_missing
        CHECK (deleted OR value IS NOT NULL OR status IN ('M', 'O', 'L', 'H', 'Q'))
);

-- At most one current version per observation; also the index of every "now" read.
CREATE UNIQUE INDEX observation_versions_current
    ON observation_versions (indicator_key, period) WHERE known_until IS NULL;

-- The change feed reads versions in commit order. Versions are appended in that order,
-- so a BRIN index costs almost nothing to maintain on bulk loads.
CREATE INDEX observation_versions_commit_brin
    ON observation_versions USING brin (commit_seq);

-- Referential integrity between observation_versions and indicators, checked once per
-- statement: every inserted version's indicator exists, and an indicator that still has
-- versions cannot be deleted (the service deletes them first when told to `force`).
CREATE FUNCTION observation_versions_indicator_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n
                WHERE NOT EXISTS (SELECT 1 FROM indicators i WHERE i.indicator_key = n.indicator_key)) THEN
        RAISE EXCEPTION 'observation of an indicator that does not exist'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_versions_indicator_fkey';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER observation_versions_indicator_exists AFTER INSERT ON observation_versions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observation_versions_indicator_exists();

CREATE FUNCTION indicators_without_observations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM observation_versions WHERE indicator_key = OLD.indicator_key) THEN
        RAISE EXCEPTION 'indicator % still has observations', OLD.indicator_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_versions_indicator_fkey';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER indicators_without_observations BEFORE DELETE ON indicators
    FOR EACH ROW EXECUTE FUNCTION indicators_without_observations();
