-- Foundation schema: programmes, initiatives, targets and indicators.
--
-- The service validates every value at the API boundary; the constraints here are the
-- second line, so that no other writer (a migration, a psql session, a future bug)
-- can store what the API would refuse. Values are `numeric`, never floating point.
-- Timestamps come from the database clock (`now()`, the transaction's start), so that
-- every replica agrees on them.

-- A caller-chosen id, RFC 1034 label style (AIP-122). Byte order ("C" collation) so
-- that lists sort the same on every server, whatever its default locale.
CREATE DOMAIN resource_id AS text COLLATE "C"
    CHECK (VALUE ~ '^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$');

-- A period in SDMX syntax as stored (always canonical: months as `M07`). Byte order
-- ("C" collation): periods of one frequency then sort in time order, and range bounds
-- such as '2020-~' work, whatever the server's default locale (which may ignore
-- punctuation).
CREATE DOMAIN sdmx_period AS text COLLATE "C"
    CHECK (VALUE ~ '^[0-9]{4}(-(S[12]|Q[1-4]|M(0[1-9]|1[0-2])))?$');

-- An ISO 3166-1 alpha-2 country or ISO 3166-2 subdivision code (the lists themselves
-- are checked by the service).
CREATE DOMAIN region_code AS text
    CHECK (VALUE ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$');

CREATE TABLE programs (
    program_id    resource_id PRIMARY KEY,
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    issuing_body  text NOT NULL DEFAULT '' CHECK (char_length(issuing_body) <= 200),
    adoption_date date,
    jurisdiction  region_code NOT NULL,
    start_year    integer NOT NULL CHECK (start_year BETWEEN 1800 AND 2200),
    end_year      integer NOT NULL CHECK (end_year BETWEEN 1800 AND 2200),
    summary       text NOT NULL DEFAULT '' CHECK (char_length(summary) <= 10000),
    source_uri    text NOT NULL DEFAULT '' CHECK (char_length(source_uri) <= 2000),
    create_time   timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now(),
    -- Incremented by every update; the etag is derived from it and create_time.
    version       bigint NOT NULL DEFAULT 1,
    CONSTRAINT programs_years_ordered CHECK (end_year >= start_year)
);

CREATE TABLE indicators (
    indicator_id     resource_id PRIMARY KEY,
    title            text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description      text NOT NULL DEFAULT '' CHECK (char_length(description) <= 4000),
    -- ISO 4217 code or a plain unit from the service's list (`1`, `%`, `TEU`, ...).
    unit             text NOT NULL CHECK (unit ~ '^(1|%|[A-Z][A-Z0-9]{0,15})$'),
    -- SDMX UNIT_MULT: values are in units of 10^unit_multiplier.
    unit_multiplier  integer NOT NULL DEFAULT 0 CHECK (unit_multiplier BETWEEN -9 AND 15),
    frequency        text NOT NULL CHECK (frequency IN ('A', 'S', 'Q', 'M')),
    flow             text NOT NULL CHECK (flow IN ('export', 'import', 'total', 'balance', 'none')),
    -- EBOPS 2010 code; NULL when the series is not about a service category.
    service_category text CHECK (service_category ~ '^S([A-N][A-Z0-9]{0,2})?$'),
    region           region_code NOT NULL,
    dimensions       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(dimensions) = 'object'),
    aggregation      text NOT NULL CHECK (aggregation IN ('sum', 'average', 'end_of_period')),
    year_to_date     boolean NOT NULL DEFAULT false,
    direction        text NOT NULL CHECK (direction IN ('higher', 'lower')),
    source_agency    text NOT NULL DEFAULT '' CHECK (char_length(source_agency) <= 200),
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    version          bigint NOT NULL DEFAULT 1
);

-- Every stored period of an indicator is written in its frequency, so the frequency
-- never changes after creation.
CREATE FUNCTION indicators_frequency_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.frequency <> OLD.frequency THEN
        RAISE EXCEPTION 'the frequency of indicator % cannot change', OLD.indicator_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'indicators_frequency_immutable';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER indicators_frequency_immutable BEFORE UPDATE OF frequency ON indicators
    FOR EACH ROW EXECUTE FUNCTION indicators_frequency_immutable();

CREATE TABLE initiatives (
    program_id           resource_id NOT NULL REFERENCES programs ON DELETE CASCADE,
    initiative_id        resource_id NOT NULL,
    -- Enclosing initiative in the same programme; NULL for a development area.
    parent_initiative_id resource_id,
    title                text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description          text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    lead_agency          text NOT NULL DEFAULT '' CHECK (char_length(lead_agency) <= 200),
    state                text NOT NULL
        CHECK (state IN ('planned', 'active', 'completed', 'suspended', 'cancelled')),
    start_date           date,
    end_date             date,
    tags                 text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 32),
    position             integer NOT NULL DEFAULT 0 CHECK (position BETWEEN 0 AND 10000),
    create_time          timestamptz NOT NULL DEFAULT now(),
    update_time          timestamptz NOT NULL DEFAULT now(),
    version              bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (program_id, initiative_id),
    -- NO ACTION: a parent with children cannot be deleted by accident; the service
    -- deletes whole subtrees in one statement when asked to (`force`).
    CONSTRAINT initiatives_parent_fkey FOREIGN KEY (program_id, parent_initiative_id)
        REFERENCES initiatives (program_id, initiative_id),
    CONSTRAINT initiatives_not_own_parent CHECK (parent_initiative_id <> initiative_id),
    CONSTRAINT initiatives_dates_ordered CHECK (end_date >= start_date)
);

CREATE INDEX initiatives_parent_idx ON initiatives (program_id, parent_initiative_id);

-- Initiative trees have no cycles. The service checks this (and the depth limit) with
-- the programme row locked; the trigger is the database's own guarantee.
CREATE FUNCTION initiatives_no_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cur   text := NEW.parent_initiative_id;
    steps integer := 0;
BEGIN
    WHILE cur IS NOT NULL LOOP
        IF cur = NEW.initiative_id THEN
            RAISE EXCEPTION 'initiative % would be its own ancestor', NEW.initiative_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'initiatives_no_cycle';
        END IF;
        steps := steps + 1;
        EXIT WHEN steps > 1000;
        SELECT parent_initiative_id INTO cur
          FROM initiatives
         WHERE program_id = NEW.program_id AND initiative_id = cur;
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER initiatives_no_cycle BEFORE INSERT OR UPDATE OF parent_initiative_id
    ON initiatives FOR EACH ROW EXECUTE FUNCTION initiatives_no_cycle();

-- The indicators that measure an initiative, in the caller's order.
CREATE TABLE initiative_indicators (
    program_id    resource_id NOT NULL,
    initiative_id resource_id NOT NULL,
    -- NO ACTION: an indicator in use cannot be deleted unless the service is told to
    -- (`force`), which removes these rows first.
    indicator_id  resource_id NOT NULL REFERENCES indicators,
    ordinal       integer NOT NULL,
    PRIMARY KEY (program_id, initiative_id, indicator_id),
    FOREIGN KEY (program_id, initiative_id)
        REFERENCES initiatives (program_id, initiative_id) ON DELETE CASCADE
);

CREATE INDEX initiative_indicators_indicator_idx ON initiative_indicators (indicator_id);

CREATE TABLE targets (
    program_id      resource_id NOT NULL REFERENCES programs ON DELETE CASCADE,
    target_id       resource_id NOT NULL,
    title           text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description     text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    indicator_id    resource_id NOT NULL REFERENCES indicators,
    initiative_id   resource_id,
    kind            text NOT NULL CHECK (kind IN ('level', 'growth_rate')),
    target_value    numeric NOT NULL,
    -- Power of ten of target_value and baseline_value ("30 billion" = 30, 9).
    unit_multiplier integer NOT NULL DEFAULT 0 CHECK (unit_multiplier BETWEEN -9 AND 15),
    target_period   sdmx_period NOT NULL,
    baseline_value  numeric,
    baseline_period sdmx_period,
    direction       text NOT NULL CHECK (direction IN ('higher', 'lower')),
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (program_id, target_id),
    CONSTRAINT targets_initiative_fkey FOREIGN KEY (program_id, initiative_id)
        REFERENCES initiatives (program_id, initiative_id),
    CONSTRAINT targets_growth_needs_baseline_period
        CHECK (kind <> 'growth_rate' OR baseline_period IS NOT NULL),
    CONSTRAINT targets_growth_has_no_multiplier
        CHECK (kind <> 'growth_rate' OR unit_multiplier = 0),
    CONSTRAINT targets_baseline_value_needs_period
        CHECK (baseline_value IS NULL OR baseline_period IS NOT NULL)
);

CREATE INDEX targets_indicator_idx ON targets (indicator_id);
CREATE INDEX targets_initiative_idx ON targets (program_id, initiative_id);

-- Secrets shared by every replica (page tokens are signed with one, so a token issued
-- by one replica is honoured by another). Created by the service on first start.
CREATE TABLE server_secrets (
    name        text PRIMARY KEY,
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    create_time timestamptz NOT NULL DEFAULT now()
);

-- Built-in data sets (the Chongqing 2015 programme) loaded on first start: recorded so
-- that a data set an operator deleted on purpose is not silently re-created at the
-- next start (`tradewatch seed` loads it again on request).
CREATE TABLE seeds_applied (
    name       text PRIMARY KEY,
    apply_time timestamptz NOT NULL DEFAULT now()
);
