-- Route alert state, the outbox and small saved values.
-- The same tables and columns as migrations/sqlite/0001_initial.sql, in
-- PostgreSQL's types; `outbox.id` orders rows written in the same instant.
CREATE TABLE alert_state (
    route_id              TEXT PRIMARY KEY,
    last_alerted_minor    BIGINT,
    last_alerted_currency TEXT,
    last_alerted_at       TIMESTAMPTZ,
    alerts_sent           BIGINT NOT NULL DEFAULT 0 CHECK (alerts_sent >= 0),
    updated_at            TIMESTAMPTZ NOT NULL,
    CHECK ((last_alerted_minor IS NULL) = (last_alerted_currency IS NULL))
);
CREATE TABLE outbox (
    key        TEXT PRIMARY KEY,
    id         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    route_id   TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    recipient  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    body       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'sent', 'failed')),
    message_id TEXT,
    error      TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_status ON outbox (status);
CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at TIMESTAMPTZ
);
