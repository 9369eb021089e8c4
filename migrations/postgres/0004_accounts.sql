-- What `farewatch serve` keeps: API users and their tokens, idempotency keys,
-- API watches, airport interests and the airport flights the collector
-- gathers (src/store/accounts.rs). The same tables and columns as
-- migrations/sqlite/0004_accounts.sql, in PostgreSQL's types.
CREATE TABLE users (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL,
    last_name  TEXT NOT NULL,
    phone      TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE api_tokens (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
-- `scope` is the caller: a user's id as text, or `operator`. A locked key
-- has no response yet; a completed one has both and is no longer locked.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     BYTEA NOT NULL CHECK (octet_length(fingerprint) = 32),
    locked_at       TIMESTAMPTZ,
    response_status INTEGER,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK ((locked_at IS NULL) = (response_status IS NOT NULL)),
    CHECK ((response_status IS NULL) = (response_body IS NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE TABLE api_watches (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('fare', 'flight')),
    spec       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_watches_user ON api_watches (user_id);
CREATE TABLE interests (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    airport    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, airport)
);
CREATE TABLE airport_flights (
    icao24                        TEXT NOT NULL,
    first_seen                    TIMESTAMPTZ NOT NULL,
    last_seen                     TIMESTAMPTZ NOT NULL,
    departure_airport             TEXT,
    arrival_airport               TEXT,
    callsign                      TEXT,
    departure_horizontal_distance BIGINT,
    departure_vertical_distance   BIGINT,
    arrival_horizontal_distance   BIGINT,
    arrival_vertical_distance     BIGINT,
    departure_candidates          BIGINT,
    arrival_candidates            BIGINT,
    PRIMARY KEY (icao24, first_seen)
);
CREATE INDEX airport_flights_arrival ON airport_flights (arrival_airport, first_seen);
CREATE INDEX airport_flights_departure ON airport_flights (departure_airport, first_seen);
