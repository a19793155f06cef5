-- The order fulfilment saga's durable state: one row per instance (the order id), with the process
-- manager's state as JSON, and an append-only timeline of what it did. A row, not an event stream, because
-- what the orchestrator asks of it is a work queue: which instances are due, and in what order.
CREATE TABLE sagas (
    saga_id    text        PRIMARY KEY,
    status     text        NOT NULL,
    -- The step due next (null when finished); the step it parked on when parked.
    step       text,
    state      jsonb       NOT NULL,
    -- When a worker should work it next; null when it is finished or parked.
    due_at     timestamptz,
    version    bigint      NOT NULL DEFAULT 1,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagas_due ON sagas (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX sagas_by_status ON sagas (status, updated_at);

-- Every attempt of every step, its outcome and timing, and every change made from outside (a cancellation,
-- an operator's retry).
CREATE TABLE saga_steps (
    id          bigserial   PRIMARY KEY,
    saga_id     text        NOT NULL REFERENCES sagas (saga_id),
    step        text        NOT NULL,
    attempt     integer     NOT NULL,
    outcome     text        NOT NULL,
    reason      text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saga_steps_by_saga ON saga_steps (saga_id, id);
