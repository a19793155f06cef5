-- Where reading all events in commit order must stop: the oldest transaction of THIS database still running.
--
-- A reader of all events returns only events of transactions older than every transaction still running, so
-- that nothing commits later behind it (see EventStore.readAll). The snapshot's xmin is the oldest running
-- transaction of the whole cluster: one transaction left open in any database (an idle psql session, another
-- context's long report, another test) held back every reader of every database. But a transaction of another
-- database cannot write this database's events, so it need not hold them back.
--
-- This horizon is the oldest transaction in the statement's own snapshot that is not known to belong to
-- another database, or the snapshot's xmax when there is none:
--   * every transaction below the snapshot's xmax that is not in its xip list had ended when the snapshot was
--     taken, so its events, if it committed, are visible to the statement that asks;
--   * a transaction in the xip list is skipped only when pg_stat_activity shows a backend of another database
--     running it (a backend never changes database); one whose backend is not shown (a prepared transaction,
--     a role without the right to see it) is taken to be this database's: held back, as before.
-- Transactions at or past xmax may still run, and are held back.
--
-- It reads pg_stat_activity (about 0.3 ms with 300 connection slots), so the readers ask for it only when the
-- snapshot's xmin alone holds something back, and the subscribers only once that has lasted a moment.
-- STABLE: it sees the calling statement's snapshot, the same that reads the events.
CREATE FUNCTION readable_horizon() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT least(pg_snapshot_xmax(s)::text::bigint,
                 (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
                   WHERE x::text::bigint % 4294967296 NOT IN (
                         SELECT a.backend_xid::text::bigint FROM pg_stat_activity a
                          WHERE a.backend_xid IS NOT NULL
                            AND a.datid IS DISTINCT FROM (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))))
      FROM pg_current_snapshot() AS s
$$;

-- The transaction of this database that holds readers back, if one does: for readiness and the logs, which
-- name it (a session left idle in a transaction is the usual culprit; idle_in_transaction_session_timeout
-- ends it).
CREATE FUNCTION holding_back_readers()
RETURNS TABLE (pid integer, state text, transaction_seconds double precision, application_name text)
LANGUAGE sql STABLE AS $$
    SELECT a.pid, a.state, extract(epoch FROM now() - a.xact_start)::double precision, a.application_name
      FROM pg_stat_activity a
     WHERE a.backend_xid IS NOT NULL
       AND a.datid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND a.backend_xid::text::bigint = readable_horizon() % 4294967296
$$;
