-- Recipients who replied STOP, and finding a route's unfinished alert.
CREATE TABLE suppressed (
    route_id   TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (route_id, recipient)
);
CREATE INDEX outbox_route_seq ON outbox (route_id, seq);
