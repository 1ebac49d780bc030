-- Items that connectors deliver later in batches (the titres of a day's PES bordereau),
-- held here so that their bus messages can be acknowledged at once (see
-- connectors/sdk/src/holding.rs). A batch is `open` (items join it), `sealed` (claimed
-- once: its items are fixed) or `written`. Holding an item increments its batch's count
-- only while it is open: that update takes the batch row's lock, so an item held while
-- the batch is being sealed is in it or refused, never in between. The lease says which
-- instance writes a sealed batch; writing it twice would give the same file.
CREATE TABLE IF NOT EXISTS held_batches (
    connector   TEXT NOT NULL,
    batch       TEXT NOT NULL,
    state       TEXT NOT NULL,
    items       BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    opened_at   TEXT NOT NULL,
    PRIMARY KEY (connector, batch)
);
CREATE TABLE IF NOT EXISTS held_items (
    connector TEXT NOT NULL,
    owner     TEXT NOT NULL,
    batch     TEXT NOT NULL,
    commune   TEXT NOT NULL,
    form      TEXT NOT NULL,
    item      TEXT NOT NULL,
    held_at   TEXT NOT NULL,
    PRIMARY KEY (connector, owner)
);
CREATE INDEX IF NOT EXISTS held_items_batch ON held_items (connector, batch);
