-- A change of a saga may record several attempts at once: the worker records a step's success together with the
-- next step's result when the next step follows at once (FulfilmentOrchestrator.work). write_saga takes them as
-- 'attempts' (an array), each with its own 'finishedAt'; the single 'attempt' of 0006 is still taken, so an
-- instance of the service from before this migration keeps working during a rolling upgrade.
CREATE OR REPLACE FUNCTION write_saga(p_change jsonb) RETURNS SETOF sagas LANGUAGE plpgsql AS $$
DECLARE
    v_row sagas;
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
    INSERT INTO saga_steps (saga_id, step, attempt, outcome, reason, started_at, finished_at)
    SELECT v_row.saga_id, a->>'step', (a->>'attempt')::integer, a->>'outcome', a->>'reason',
           to_timestamp((a->>'startedAt')::float8), coalesce(to_timestamp((a->>'finishedAt')::float8), now())
      FROM jsonb_array_elements(CASE jsonb_typeof(p_change->'attempts') WHEN 'array' THEN p_change->'attempts' ELSE '[]' END
                                || CASE jsonb_typeof(p_change->'attempt') WHEN 'object' THEN jsonb_build_array(p_change->'attempt') ELSE '[]' END)
           WITH ORDINALITY AS attempts (a, n)
     ORDER BY n;
    RETURN NEXT v_row;
END
$$;
