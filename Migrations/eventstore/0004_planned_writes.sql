-- A command's writes in one statement: one round trip and one commit, instead of BEGIN, a statement per lock,
-- read, append and idempotency record, and COMMIT.
--
-- The command is first decided on the states the service keeps in memory, its writes recorded instead of made
-- (EventStore.runPlanned): which streams it locked, at which version it read each stream, what it appends to
-- each, and which of the context's own SQL functions it calls (with one jsonb argument each).
-- These functions then take the same locks in the same order, check that every stream read is still at the
-- version it was read at, and append. When a stream has moved on, they raise SE002 ('planned_writes_stale'):
-- the statement is undone as a whole, and the service decides again in a transaction, reading what it missed.

-- The planned writes: returns one row per append, in order, with where it stands in commit order.
CREATE FUNCTION apply_planned_writes(
    p_locks           text[],
    p_read_streams    text[],
    p_read_versions   bigint[],
    p_append_streams  text[],
    p_append_versions bigint[],
    p_append_sizes    integer[],
    p_event_ids       uuid[],
    p_event_types     text[],
    p_schema_versions integer[],
    p_payloads        text[],
    p_metadata        text[],
    p_calls           text[],
    p_call_arguments  text[]
) RETURNS TABLE (stream_version bigint, transaction_id bigint, first_position bigint, last_position bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stream  text;
    v_current bigint;
    v_from    integer := 1;
    v_to      integer;
    v_append  record;
BEGIN
    -- In the order the command took them, as its transaction would have (key space 24158: stream locks).
    FOREACH v_stream IN ARRAY p_locks LOOP
        PERFORM pg_advisory_xact_lock(24158, hashtext(v_stream));
    END LOOP;
    -- Each statement reads with a new snapshot: it sees every write committed by a previous holder of a lock.
    FOR i IN 1 .. coalesce(cardinality(p_read_streams), 0) LOOP
        SELECT coalesce(max(e.stream_version), 0) INTO v_current FROM events e WHERE e.stream_id = p_read_streams[i];
        IF v_current <> p_read_versions[i] THEN
            RAISE EXCEPTION 'stream % is at version %, not at the % it was decided on', p_read_streams[i], v_current, p_read_versions[i]
                USING ERRCODE = 'SE002';
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(p_append_streams), 0) LOOP
        v_to := v_from + p_append_sizes[i] - 1;
        SELECT * INTO v_append FROM append_events(p_append_streams[i], p_append_versions[i], p_event_ids[v_from:v_to],
                                                   p_event_types[v_from:v_to], p_schema_versions[v_from:v_to],
                                                   p_payloads[v_from:v_to], p_metadata[v_from:v_to]);
        IF v_append.outcome <> 'appended' THEN
            RAISE EXCEPTION 'appending to % was %', p_append_streams[i], v_append.outcome USING ERRCODE = 'SE002';
        END IF;
        stream_version := v_append.stream_version;
        transaction_id := v_append.transaction_id;
        first_position := v_append.first_position;
        last_position := v_append.last_position;
        RETURN NEXT;
        v_from := v_to + 1;
    END LOOP;
    -- The context's own writes: functions of one jsonb argument, named by the service's code (quoted anyway).
    FOR i IN 1 .. coalesce(cardinality(p_calls), 0) LOOP
        EXECUTE format('SELECT %I($1::jsonb)', p_calls[i]) USING p_call_arguments[i];
    END LOOP;
END
$$;

-- A command run once per idempotency key (ServiceKit's CommandRunner), in one statement: takes the key's lock
-- (as lock_idempotency_key); answers the stored reply if the key was used; else applies the planned writes,
-- writes their positions into the reply in place of the placeholders (two per append: its first and last
-- position, as the command saw them), stores the reply with the key, and answers it.
CREATE FUNCTION run_planned_command(
    p_key             text,
    p_fingerprint     text,
    p_reply           text,
    p_placeholders    text[],
    p_locks           text[],
    p_read_streams    text[],
    p_read_versions   bigint[],
    p_append_streams  text[],
    p_append_versions bigint[],
    p_append_sizes    integer[],
    p_event_ids       uuid[],
    p_event_types     text[],
    p_schema_versions integer[],
    p_payloads        text[],
    p_metadata        text[],
    p_calls           text[],
    p_call_arguments  text[]
) RETURNS TABLE (fingerprint text, reply text, replayed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_reply  text := p_reply;
    v_index  integer := 0;
    v_append record;
BEGIN
    PERFORM pg_advisory_xact_lock(24159, hashtext(p_key));
    RETURN QUERY SELECT k.fingerprint, k.reply::text, true FROM idempotency_keys k WHERE k.key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    FOR v_append IN SELECT * FROM apply_planned_writes(p_locks, p_read_streams, p_read_versions, p_append_streams, p_append_versions,
                                                        p_append_sizes, p_event_ids, p_event_types, p_schema_versions, p_payloads,
                                                        p_metadata, p_calls, p_call_arguments) LOOP
        v_index := v_index + 1;
        v_reply := replace(v_reply, p_placeholders[2 * v_index - 1], v_append.transaction_id || '-' || v_append.first_position);
        v_reply := replace(v_reply, p_placeholders[2 * v_index], v_append.transaction_id || '-' || v_append.last_position);
    END LOOP;
    INSERT INTO idempotency_keys (key, fingerprint, reply) VALUES (p_key, p_fingerprint, v_reply::jsonb);
    RETURN QUERY SELECT p_fingerprint, v_reply, false;
END
$$;
