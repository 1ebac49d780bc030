-- The démarche number the citizen and the agents see (w.c.s.'s `display_id`, e.g.
-- `12-42`), kept beside each outcome so that an operator can find a démarche by it on the
-- dashboard or the admin API (`/api/deliveries?q=12-42`). Empty for the rows written
-- before this migration and for démarches that have none.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
ALTER TABLE deliveries ADD COLUMN display_id TEXT;

CREATE INDEX IF NOT EXISTS deliveries_display_id ON deliveries (display_id);
-- The dashboard reads the latest failures (few rows are written here: one per failure).
CREATE INDEX IF NOT EXISTS delivery_errors_at ON delivery_errors (at);
