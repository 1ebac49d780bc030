-- The bindings the gateway made for its routes, so that a route removed from the
-- configuration has its binding removed too (RabbitMQ cannot list bindings without the
-- management plugin, and a stale binding would keep feeding a queue nobody routes for).
CREATE TABLE IF NOT EXISTS bindings (
    exchange    TEXT NOT NULL,
    queue       TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    connector   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (exchange, queue, routing_key)
);
