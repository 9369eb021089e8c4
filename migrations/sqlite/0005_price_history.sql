-- Price history: every quote the engine obtained from a provider, per search
-- (src/store/price_history.rs). `search_key` is `LookupKey::history_key`
-- (route, dates, adults, currency). Timestamps are RFC 3339 text in UTC with
-- nine fractional digits, as in 0001, so `substr(observed_at, 1, 10)` is the
-- UTC day compaction groups by.
CREATE TABLE price_history (
    id          INTEGER PRIMARY KEY,
    search_key  TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    price_minor INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX price_history_search ON price_history (search_key, observed_at);
