-- Idempotency keys are kept for a window (ServiceRuntime's IdempotencyKeyRetention, 30 days by default), then
-- forgotten oldest first: the sweep finds them by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
