-- The event store: applied to every context's database before that context's own migrations.

CREATE TABLE events (
    -- Unique and increasing in insertion order, but NOT in commit order: a slow transaction can
    -- commit position 100 after a fast one committed 101. Readers of all events therefore go by
    -- (transaction_id, global_position), below the oldest running transaction (see the README).
    global_position bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's id (pg_current_xact_id(): 64 bits with epoch, never wraps).
    transaction_id  bigint      NOT NULL,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    -- 1 for a stream's first event; a stream's version is its last event's.
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_in_commit_order ON events (transaction_id, global_position);

-- How an append went, when the event ids are already stored: the whole batch, as one earlier append to this
-- stream ('duplicate', with that append's versions and positions), or anything else ('id_conflict').
CREATE FUNCTION classify_stored_event_ids(p_stream_id text, p_event_ids uuid[])
RETURNS TABLE (outcome text, stream_version bigint, transaction_id bigint, first_position bigint, last_position bigint)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN count(*) = cardinality(p_event_ids)
                 AND bool_and(e.stream_id = p_stream_id)
                 AND bool_and(e.stream_version = n.ord + (SELECT min(f.stream_version) FROM events f
                                                           WHERE f.event_id = ANY (p_event_ids)) - 1)
                THEN 'duplicate' ELSE 'id_conflict' END,
           max(e.stream_version), max(e.transaction_id), min(e.global_position), max(e.global_position)
      FROM unnest(p_event_ids) WITH ORDINALITY AS n(event_id, ord)
      JOIN events e ON e.event_id = n.event_id
$$;

-- append_events: appends a batch to one stream, atomically, in one round trip.
--
--   p_expected_version: NULL = any version, 0 = the stream must have no events, n = it must be at n.
--
-- Returns one row; outcome is
--   'appended'       stored: stream_version is the new version, positions those of the first and last event;
--   'duplicate'      every event id is already stored, in this stream, in this order and contiguously: this
--                    batch was appended before. Nothing is written; the answer is that append's, so a writer
--                    that lost the answer to an append can send it again;
--   'wrong_version'  the expected version did not match: stream_version is the actual version;
--   'id_conflict'    some event ids are stored, but not as this same batch: nothing is written.
--
-- Writers of one stream are serialised by a transaction-scoped advisory lock on the stream's name (no row is
-- written for it); the unique (stream_id, stream_version) index backs it up.
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
    v_count    integer := cardinality(p_event_ids);
    v_current  bigint;
    v_xid      bigint;
    v_inserted integer;
    v_first    bigint;
    v_last     bigint;
BEGIN
    -- Key space 24158: stream locks (EventStore.streamLockSpace), apart from other advisory locks.
    PERFORM pg_advisory_xact_lock(24158, hashtext(p_stream_id));
    -- A new statement, so a new snapshot: it sees every append that held the lock before us.
    SELECT coalesce(max(e.stream_version), 0) INTO v_current FROM events e WHERE e.stream_id = p_stream_id;

    IF p_expected_version IS NOT NULL AND p_expected_version <> v_current THEN
        -- A retry of a batch that was stored finds the stream moved on by that very batch.
        IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_event_ids)) THEN
            RETURN QUERY SELECT * FROM classify_stored_event_ids(p_stream_id, p_event_ids);
        ELSE
            RETURN QUERY SELECT 'wrong_version'::text, v_current, NULL::bigint, NULL::bigint, NULL::bigint;
        END IF;
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
        ON CONFLICT (event_id) DO NOTHING
        RETURNING global_position
    )
    SELECT count(*), min(global_position), max(global_position) INTO v_inserted, v_first, v_last FROM inserted;

    IF v_inserted = v_count THEN
        RETURN QUERY SELECT 'appended'::text, v_current + v_count, v_xid, v_first, v_last;
    ELSIF v_inserted = 0 THEN
        RETURN QUERY SELECT * FROM classify_stored_event_ids(p_stream_id, p_event_ids);
    ELSE
        -- Some ids were new and some stored: undo the statement (and so the part that was inserted).
        RAISE EXCEPTION 'some event ids appended to % are already stored', p_stream_id
            USING ERRCODE = 'SE001', HINT = 'append a batch again only as a whole';
    END IF;
END
$$;
