-- Dead letters an operator discarded (`aiguillage dead discard`): which démarche, for which
-- connector, why, who and when. The message is gone from the bus once discarded; this row
-- is what remains of it. No primary key: the same démarche can be discarded twice (a
-- duplicate dead letter), and each discard is a fact worth keeping.
-- Portable SQL: the same file runs on SQLite and PostgreSQL; timestamps are RFC 3339 UTC
-- text with milliseconds, like the other tables.
CREATE TABLE IF NOT EXISTS discards (
    envelope_id  TEXT NOT NULL,
    connector    TEXT NOT NULL,
    commune      TEXT NOT NULL,
    form         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    discarded_by TEXT NOT NULL,
    discarded_at TEXT NOT NULL,
    body_sha256  TEXT
);

CREATE INDEX IF NOT EXISTS discards_by_delivery ON discards (envelope_id, connector);
