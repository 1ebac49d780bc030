-- The status events the Publik notifier sent and the portal took (2xx), one row per
-- (envelope, connector, status). A jump trigger called again after it succeeded (a crash
-- between the portal's answer and the acknowledgement) gets 404 from w.c.s., the démarche
-- having moved on: this row is what tells that 404 means "already applied", not a refusal.
-- Portable SQL: the same file runs on SQLite and PostgreSQL; timestamps are RFC 3339 UTC
-- text with milliseconds, like the other tables.
CREATE TABLE IF NOT EXISTS publik_notifications (
    envelope_id TEXT NOT NULL,
    connector   TEXT NOT NULL,
    status      TEXT NOT NULL,
    portal      TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    PRIMARY KEY (envelope_id, connector, status)
);
