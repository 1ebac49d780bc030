-- One row per (envelope, connector): the durable outcome that makes delivery
-- effectively-once. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Timestamps are RFC 3339 UTC text with milliseconds, so they sort as text.
CREATE TABLE IF NOT EXISTS deliveries (
    envelope_id   TEXT   NOT NULL,
    connector     TEXT   NOT NULL,
    commune       TEXT   NOT NULL,
    form          TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    attempts      BIGINT NOT NULL,
    reference     TEXT,
    last_error    TEXT,
    first_seen_at TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL,
    PRIMARY KEY (envelope_id, connector)
);

CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (connector, status, updated_at);
