-- The history of failed attempts, one row per failure: what an operator reads to
-- understand a dead letter, kept after the message itself is replayed or discarded.
CREATE TABLE IF NOT EXISTS delivery_errors (
    envelope_id TEXT   NOT NULL,
    connector   TEXT   NOT NULL,
    attempt     BIGINT NOT NULL,
    error       TEXT   NOT NULL,
    at          TEXT   NOT NULL
);

CREATE INDEX IF NOT EXISTS delivery_errors_by_delivery ON delivery_errors (envelope_id, connector);
