-- Price history: every quote the engine obtained from a provider, per search
-- (src/store/price_history.rs). The same table and columns as
-- migrations/sqlite/0005_price_history.sql, in PostgreSQL's types.
CREATE TABLE price_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    search_key  TEXT NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    price_minor BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX price_history_search ON price_history (search_key, observed_at);
