-- The correlation id and W3C trace context of the checkout that started a saga: its steps' calls to Catalog
-- and Billing, and the events it records, carry them, so one order's story can be followed across services.
ALTER TABLE sagas ADD COLUMN correlation_id text, ADD COLUMN traceparent text;
