-- A command's first reads, each in one round trip instead of two: take a lock, then read what it guards.
--
-- Each is PL/pgSQL on purpose: its second statement takes a new snapshot (READ COMMITTED), so it sees every
-- write committed by whoever held the lock before. One SQL statement would read with the snapshot it had
-- before it waited for the lock, and could miss that write.

-- A stream's events from p_from on, after taking the stream's append lock (as append_events does) until the
-- transaction ends: a command reads the state it decides on, and nobody can append before it does.
CREATE FUNCTION read_stream_locked(p_stream_id text, p_from bigint)
RETURNS SETOF events LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(24158, hashtext(p_stream_id));
    RETURN QUERY SELECT * FROM events e
                  WHERE e.stream_id = p_stream_id AND e.stream_version >= p_from
                  ORDER BY e.stream_version;
END
$$;

-- The stored request fingerprint and reply of an idempotency key, after taking the key's lock (key space 24159)
-- until the transaction ends: one request with a key runs at a time, and the next finds the first one's reply.
CREATE FUNCTION lock_idempotency_key(p_key text)
RETURNS TABLE (fingerprint text, reply text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(24159, hashtext(p_key));
    RETURN QUERY SELECT k.fingerprint, k.reply::text FROM idempotency_keys k WHERE k.key = p_key;
END
$$;

-- Takes the append locks of several streams until the transaction ends, in the order given (callers sort the
-- names, so that two transactions locking the same streams cannot deadlock), in one round trip.
CREATE FUNCTION lock_streams(p_stream_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_stream text;
BEGIN
    FOREACH v_stream IN ARRAY p_stream_ids LOOP
        PERFORM pg_advisory_xact_lock(24158, hashtext(v_stream));
    END LOOP;
END
$$;
