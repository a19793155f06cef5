-- append_events, the same contract (0001), with a path of its own for the commonest append, a single event: one
-- INSERT … VALUES of the arrays' first elements instead of unnest(…) WITH ORDINALITY sorted by ordinal, counted and
-- aggregated through a CTE, and the answer returned as the function's row instead of by a second query. Measured
-- inside the server (bin/bench append, "Inside the server"), an append of one event went from 2.6 × a raw INSERT of
-- the same row to 1.9 ×; most of what is left is the stream's lock and the probe for its version.
CREATE OR REPLACE FUNCTION append_events(
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
    IF v_count = 1 THEN
        INSERT INTO events (transaction_id, event_id, stream_id, stream_version,
                            event_type, schema_version, payload, metadata)
        VALUES (v_xid, p_event_ids[1], p_stream_id, v_current + 1,
                p_event_types[1], p_schema_versions[1], p_payloads[1]::jsonb, p_metadata[1]::jsonb)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING global_position INTO v_first;
        IF v_first IS NULL THEN
            RETURN QUERY SELECT * FROM classify_stored_event_ids(p_stream_id, p_event_ids);
            RETURN;
        END IF;
        outcome := 'appended';
        stream_version := v_current + 1;
        transaction_id := v_xid;
        first_position := v_first;
        last_position := v_first;
        RETURN NEXT;
        RETURN;
    END IF;

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
