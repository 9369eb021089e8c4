-- What `farewatch serve` keeps: API users and their tokens, idempotency keys,
-- API watches, airport interests and the airport flights the collector
-- gathers (src/store/accounts.rs). Timestamps are RFC 3339 text in UTC with
-- nine fractional digits, as in 0001; hashes are 32-byte BLOBs.
-- AUTOINCREMENT: an id is never reused after a delete, as PostgreSQL's
-- identity columns never are (a watch's id names its alert state).
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL,
    last_name  TEXT NOT NULL,
    phone      TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE api_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
-- `scope` is the caller: a user's id as text, or `operator`. A locked key
-- has no response yet; a completed one has both and is no longer locked.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     BLOB NOT NULL CHECK (length(fingerprint) = 32),
    locked_at       TEXT,
    response_status INTEGER,
    response_body   TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK ((locked_at IS NULL) = (response_status IS NOT NULL)),
    CHECK ((response_status IS NULL) = (response_body IS NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE TABLE api_watches (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('fare', 'flight')),
    spec       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX api_watches_user ON api_watches (user_id);
CREATE TABLE interests (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    airport    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, airport)
);
CREATE TABLE airport_flights (
    icao24                        TEXT NOT NULL,
    first_seen                    TEXT NOT NULL,
    last_seen                     TEXT NOT NULL,
    departure_airport             TEXT,
    arrival_airport               TEXT,
    callsign                      TEXT,
    departure_horizontal_distance INTEGER,
    departure_vertical_distance   INTEGER,
    arrival_horizontal_distance   INTEGER,
    arrival_vertical_distance     INTEGER,
    departure_candidates          INTEGER,
    arrival_candidates            INTEGER,
    PRIMARY KEY (icao24, first_seen)
);
CREATE INDEX airport_flights_arrival ON airport_flights (arrival_airport, first_seen);
CREATE INDEX airport_flights_departure ON airport_flights (departure_airport, first_seen);
