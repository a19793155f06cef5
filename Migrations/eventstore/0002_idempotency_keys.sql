-- Commands run once per Idempotency-Key: the key, a fingerprint of the request, and the reply, stored in the
-- same transaction as the command's events (ServiceKit's CommandRunner).
CREATE TABLE idempotency_keys (
    key         text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    reply       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
