-- API keys, the audit log and idempotent retries.

-- Bearer keys. The secret is `tw_{key_id}_{43 chars of base64url}`; only its SHA-256
-- is kept. A revoked key keeps its row (audit events name it) with revoke_time set.
CREATE TABLE api_keys (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9]{12}$'),
    secret_hash  bytea NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    display_name text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 200),
    role         text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    creator      text REFERENCES api_keys,
    create_time  timestamptz NOT NULL DEFAULT now(),
    revoke_time  timestamptz
);

-- Every change to the data, written in the transaction that makes it: by the trigger
-- below for the resource tables, and explicitly (one event per call, with counts) for
-- observation writes.
CREATE TABLE audit_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       timestamptz NOT NULL DEFAULT now(),
    actor      text,
    method     text NOT NULL,
    resource   text NOT NULL,
    action     text NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'DELETE', 'IMPORT')),
    request_id text NOT NULL DEFAULT '',
    before     jsonb,
    after      jsonb
);

CREATE INDEX audit_events_resource_idx ON audit_events (resource text_pattern_ops, event_id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, event_id);
CREATE INDEX audit_events_time_idx ON audit_events USING brin (time);

-- The caller of the current transaction, set by the service with set_config(..., true)
-- (transaction-local). Changes made without it (the seed, psql) are recorded as the
-- method 'tradewatch' with no actor.
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row  jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row  jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    row_json jsonb := coalesce(new_row, old_row);
    resource text := TG_ARGV[0];
    part     text;
    b        jsonb;
    a        jsonb;
BEGIN
    -- TG_ARGV[0] is a name pattern such as 'programs/{program_id}/targets/{target_id}'.
    FOR part IN SELECT m[1] FROM regexp_matches(TG_ARGV[0], '\{([a-z_]+)\}', 'g') AS m LOOP
        resource := replace(resource, '{' || part || '}', row_json ->> part);
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, n.value)
          INTO b, a
          FROM jsonb_each(old_row) o JOIN jsonb_each(new_row) n USING (key)
         WHERE o.value IS DISTINCT FROM n.value
           AND o.key NOT IN ('update_time', 'version');
        IF b IS NULL THEN
            RETURN NULL;
        END IF;
    ELSE
        b := old_row;
        a := new_row;
    END IF;
    INSERT INTO audit_events (actor, method, resource, action, request_id, before, after)
    VALUES (nullif(current_setting('tradewatch.actor', true), ''),
            coalesce(nullif(current_setting('tradewatch.method', true), ''), 'tradewatch'),
            resource,
            CASE TG_OP WHEN 'INSERT' THEN 'CREATE' WHEN 'UPDATE' THEN 'UPDATE' ELSE 'DELETE' END,
            coalesce(current_setting('tradewatch.request_id', true), ''),
            b, a);
    RETURN NULL;
END
$$;

CREATE TRIGGER programs_audit AFTER INSERT OR UPDATE OR DELETE ON programs
    FOR EACH ROW EXECUTE FUNCTION audit_row('programs/{program_id}');
CREATE TRIGGER initiatives_audit AFTER INSERT OR UPDATE OR DELETE ON initiatives
    FOR EACH ROW EXECUTE FUNCTION audit_row('programs/{program_id}/initiatives/{initiative_id}');
CREATE TRIGGER initiative_indicators_audit AFTER INSERT OR DELETE ON initiative_indicators
    FOR EACH ROW EXECUTE FUNCTION audit_row('programs/{program_id}/initiatives/{initiative_id}/indicators/{indicator_id}');
CREATE TRIGGER targets_audit AFTER INSERT OR UPDATE OR DELETE ON targets
    FOR EACH ROW EXECUTE FUNCTION audit_row('programs/{program_id}/targets/{target_id}');
CREATE TRIGGER indicators_audit AFTER INSERT OR UPDATE OR DELETE ON indicators
    FOR EACH ROW EXECUTE FUNCTION audit_row('indicators/{indicator_id}');
-- The hash is left out of the record: a key's audit shows its id, role and times.
CREATE FUNCTION audit_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_events (actor, method, resource, action, request_id, before, after)
    VALUES (nullif(current_setting('tradewatch.actor', true), ''),
            coalesce(nullif(current_setting('tradewatch.method', true), ''), 'tradewatch'),
            'apiKeys/' || NEW.key_id,
            CASE WHEN TG_OP = 'INSERT' THEN 'CREATE' ELSE 'DELETE' END,
            coalesce(current_setting('tradewatch.request_id', true), ''),
            CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) - 'secret_hash' END,
            CASE WHEN TG_OP = 'INSERT' THEN to_jsonb(NEW) - 'secret_hash' END);
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OF revoke_time ON api_keys
    FOR EACH ROW EXECUTE FUNCTION audit_api_key();

-- Idempotent retries (AIP-155): a create, batch or import call with a request_id is
-- recorded in the transaction that applies it, with a fingerprint of the request and
-- the response it got. Kept for at least 24 hours (removed after 48).
CREATE TABLE idempotency_keys (
    request_id  uuid PRIMARY KEY,
    method      text NOT NULL,
    fingerprint bytea NOT NULL,
    response    bytea,
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idempotency_keys_time_idx ON idempotency_keys (create_time);
