-- A saga step's result recorded in one statement: the instance's new state and timeline entry (as the
-- Sagas.Update statement writes them), and the order's events it leads to, planned on the order's kept state
-- (apply_planned_writes, Migrations/eventstore/0004_planned_writes.sql). Instead of BEGIN, the update, the
-- append and COMMIT.
--
-- Only at version p_version: no row then, and nothing written (a customer's cancellation or an operator's retry
-- changed the instance). The row's lock is taken before the order stream's, as in every other writer of both.
-- A stale plan raises SE002, which undoes the update too.
CREATE FUNCTION advance_saga(
    p_saga_id         text,
    p_step            text,
    p_attempt         integer,
    p_outcome         text,
    p_reason          text,
    p_started_at      timestamptz,
    p_has_attempt     boolean,
    p_status          text,
    p_next_step       text,
    p_state           text,
    p_delay           float8,
    p_version         bigint,
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
) RETURNS SETOF sagas LANGUAGE plpgsql AS $$
DECLARE
    v_row sagas;
BEGIN
    UPDATE sagas s SET status = p_status, step = p_next_step, state = p_state::jsonb,
           due_at = CASE WHEN p_delay IS NULL THEN NULL ELSE now() + make_interval(secs => p_delay) END,
           version = s.version + 1, updated_at = now()
     WHERE s.saga_id = p_saga_id AND s.version = p_version
    RETURNING * INTO v_row;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_has_attempt THEN
        INSERT INTO saga_steps (saga_id, step, attempt, outcome, reason, started_at)
        VALUES (p_saga_id, p_step, p_attempt, p_outcome, p_reason, p_started_at);
    END IF;
    PERFORM apply_planned_writes(p_locks, p_read_streams, p_read_versions, p_append_streams, p_append_versions, p_append_sizes,
                                 p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata, p_calls, p_call_arguments);
    RETURN NEXT v_row;
END
$$;

-- A new instance of the saga (Sagas.start, in the checkout's transaction, planned or not): due at once.
CREATE FUNCTION start_saga(p_instance jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO sagas (saga_id, status, step, state, due_at, correlation_id, traceparent)
    VALUES (p_instance->>'id', p_instance->>'status', p_instance->>'step', p_instance->'state', now(),
            p_instance->>'correlationId', p_instance->>'traceparent')
$$;
