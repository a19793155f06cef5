-- One writer of a saga's row and timeline. Every change of an instance goes through write_saga, which takes the
-- change as one typed row (Sagas.Change, as JSON): alone (Sagas.Write), or with the order's events planned on the
-- order's kept state (advance_saga, which replaces the 25-parameter one of 0005).
--
-- Only at version ifVersion when it is given: no row then, and nothing written (a customer's cancellation or an
-- operator's retry changed the instance). The row's lock is taken before the order stream's, as in every other
-- writer of both; a stale plan raises SE002, which undoes the update too.
CREATE FUNCTION write_saga(p_change jsonb) RETURNS SETOF sagas LANGUAGE plpgsql AS $$
DECLARE
    v_row     sagas;
    v_attempt jsonb := p_change->'attempt';
BEGIN
    UPDATE sagas s SET status = p_change->>'status', step = p_change->>'step', state = p_change->'state',
           due_at = now() + make_interval(secs => (p_change->>'delaySeconds')::float8),
           version = s.version + 1, updated_at = now()
     WHERE s.saga_id = p_change->>'id'
       AND (p_change->>'ifVersion' IS NULL OR s.version = (p_change->>'ifVersion')::bigint)
    RETURNING * INTO v_row;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF jsonb_typeof(v_attempt) = 'object' THEN
        INSERT INTO saga_steps (saga_id, step, attempt, outcome, reason, started_at)
        VALUES (v_row.saga_id, v_attempt->>'step', (v_attempt->>'attempt')::integer, v_attempt->>'outcome', v_attempt->>'reason',
                to_timestamp((v_attempt->>'startedAt')::float8));
    END IF;
    RETURN NEXT v_row;
END
$$;

DROP FUNCTION advance_saga(text, text, integer, text, text, timestamptz, boolean, text, text, text, float8, bigint,
                           text[], text[], bigint[], text[], bigint[], integer[], uuid[], text[], integer[], text[], text[],
                           text[], text[]);

CREATE FUNCTION advance_saga(
    p_change          jsonb,
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
    SELECT * INTO v_row FROM write_saga(p_change);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM apply_planned_writes(p_locks, p_read_streams, p_read_versions, p_append_streams, p_append_versions, p_append_sizes,
                                 p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata, p_calls, p_call_arguments);
    RETURN NEXT v_row;
END
$$;
