-- A long stream's state as of a version, so that a process that has not kept it (after a restart) reads the snapshot
-- and the events after it, not the whole stream (CommandHandler with Snapshotting). One row per stream, replaced by a
-- later one. `schema` names the state's encoding and the decider's version: a snapshot of another schema is ignored
-- (the state is folded from the first event, and a snapshot of the new schema taken), so changing a decider never
-- loads a state the new code would not have folded.
CREATE TABLE snapshots (
    stream_id      text        PRIMARY KEY,
    stream_version bigint      NOT NULL CHECK (stream_version >= 1),
    schema         text        NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now()
);
