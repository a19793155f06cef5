-- A worker's claim on a saga instance, in one round trip: its session-level advisory lock (key space 24160,
-- FulfilmentOrchestrator.lockSpace), then its row, read by a statement of its own, after the lock, so that it
-- shows whatever the previous holder committed. No row: not claimed (another worker holds it, or there is no
-- such instance, in which case the lock is given back at once).
CREATE FUNCTION claim_saga(p_saga_id text)
RETURNS SETOF sagas LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_lock(24160, hashtext(p_saga_id)) THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM sagas s WHERE s.saga_id = p_saga_id;
    IF NOT FOUND THEN
        PERFORM pg_advisory_unlock(24160, hashtext(p_saga_id));
    END IF;
END
$$;
