-- Route alert state, the outbox and small saved values.
-- Timestamps are RFC 3339 text in UTC with nine fractional digits, so text
-- order is time order.
CREATE TABLE alert_state (
    route_id              TEXT PRIMARY KEY NOT NULL,
    last_alerted_minor    INTEGER,
    last_alerted_currency TEXT,
    last_alerted_at       TEXT,
    alerts_sent           INTEGER NOT NULL DEFAULT 0 CHECK (alerts_sent >= 0),
    updated_at            TEXT NOT NULL,
    CHECK ((last_alerted_minor IS NULL) = (last_alerted_currency IS NULL))
);
CREATE TABLE outbox (
    key        TEXT PRIMARY KEY NOT NULL,
    route_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    recipient  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    body       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'sent', 'failed')),
    message_id TEXT,
    error      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX outbox_status ON outbox (status);
CREATE TABLE kv (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    expires_at TEXT
);
