-- What a connector reported about a delivery beyond its reference (`Receipt::details`:
-- for urbanisme, the dossier identifier and the deposit date of the electronic receipt),
-- as a JSON object of strings; NULL when it reported nothing. Kept so that a redelivered
-- démarche's `delivered` event, published again from the store, carries them too.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
ALTER TABLE deliveries ADD COLUMN details TEXT;
