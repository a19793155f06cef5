-- The event store: applied to every context's database before that context's own migrations.

-- One row per stream: its current version (the number of events in it). Appends lock this row,
-- which serialises writers of one stream (and only of that stream) until they commit.
CREATE TABLE streams (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL CHECK (version >= 0)
);

CREATE TABLE events (
    -- Unique and increasing in insertion order, but NOT in commit order: a slow transaction can
    -- commit position 100 after a fast one committed 101. Readers of all events therefore go by
    -- (transaction_id, global_position); see read_all below.
    global_position bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's id (pg_current_xact_id(), 64 bits with epoch, never wraps).
    transaction_id  bigint      NOT NULL,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_in_commit_order ON events (transaction_id, global_position);

-- append_events: appends a batch to one stream, atomically, in one round trip.
--
--   p_expected_version: NULL = any version, 0 = the stream must not exist yet, n = the stream must be at n.
--
-- Returns one row. outcome is
--   'appended'       the events were stored: stream_version is the new version, positions those written;
--   'duplicate'      every event id is already stored, in this stream, in this order and contiguously: this
--                    batch was appended before. Nothing is written and the original version and positions are
--                    returned, so a client that retries an append whose answer it lost gets the same answer;
--   'wrong_version'  the expected version did not match: stream_version is the actual version;
--   'id_conflict'    some of the event ids are already stored, but not as this same batch (part of it,
--                    or in another stream): nothing is written.
CREATE FUNCTION append_events(
    p_stream_id        text,
    p_expected_version bigint,
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_payloads         text[],
    p_metadata         text[]
) RETURNS TABLE (
    outcome        text,
    stream_version bigint,
    transaction_id bigint,
    first_position bigint,
    last_position  bigint
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_count   integer := cardinality(p_event_ids);
    v_current bigint;
    v_xid     bigint;
    v_first   bigint;
    v_last    bigint;
    v_found   integer;
    v_min_version bigint;
BEGIN
    -- Lock the stream's row (creating it at version 0), so that checking the version and the
    -- event ids and then writing is atomic with respect to other writers of this stream.
    SELECT s.version INTO v_current FROM streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO streams (stream_id, version) VALUES (p_stream_id, 0) ON CONFLICT DO NOTHING;
        SELECT s.version INTO v_current FROM streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
    END IF;

    -- Event ids already stored? Either this very batch was appended before (an idempotent retry),
    -- or the ids clash with other events.
    SELECT count(*), min(e.stream_version) INTO v_found, v_min_version
      FROM events e WHERE e.event_id = ANY (p_event_ids);
    IF v_found > 0 THEN
        IF v_found = v_count AND (
            SELECT bool_and(e.stream_id = p_stream_id AND e.stream_version = v_min_version + n.ord - 1)
              FROM unnest(p_event_ids) WITH ORDINALITY AS n(event_id, ord)
              JOIN events e ON e.event_id = n.event_id
        ) THEN
            RETURN QUERY
                SELECT 'duplicate'::text, max(e.stream_version), max(e.transaction_id),
                       min(e.global_position), max(e.global_position)
                  FROM events e WHERE e.event_id = ANY (p_event_ids);
        ELSE
            RETURN QUERY SELECT 'id_conflict'::text, v_current, NULL::bigint, NULL::bigint, NULL::bigint;
        END IF;
        RETURN;
    END IF;

    IF p_expected_version IS NOT NULL AND p_expected_version <> v_current THEN
        RETURN QUERY SELECT 'wrong_version'::text, v_current, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    v_xid := pg_current_xact_id()::text::bigint;
    WITH inserted AS (
        INSERT INTO events (transaction_id, event_id, stream_id, stream_version,
                            event_type, schema_version, payload, metadata)
        SELECT v_xid, n.event_id, p_stream_id, v_current + n.ord,
               n.event_type, n.schema_version, n.payload::jsonb, n.metadata::jsonb
          FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
               WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord)
         ORDER BY n.ord
        RETURNING global_position
    )
    SELECT min(global_position), max(global_position) INTO v_first, v_last FROM inserted;

    UPDATE streams SET version = v_current + v_count WHERE streams.stream_id = p_stream_id;

    RETURN QUERY SELECT 'appended'::text, v_current + v_count, v_xid, v_first, v_last;
END
$$;
