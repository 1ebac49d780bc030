-- Durable sequences of numbers that connectors ask for (the bordereau numbers of a PES
-- finance file…): one number per owner (an envelope id) in each sequence, so that a retry
-- gets the number it had. Numbers are unique in a sequence; with several gateway
-- instances on PostgreSQL, two that take the same next number collide on the primary key
-- of (sequence, value) and the loser takes the one after.
CREATE TABLE IF NOT EXISTS numbers (
    sequence    TEXT NOT NULL,
    value       BIGINT NOT NULL,
    owner       TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (sequence, value)
);
CREATE UNIQUE INDEX IF NOT EXISTS numbers_owner ON numbers (sequence, owner);
