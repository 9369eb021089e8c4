-- Fleet coordination (src/store/fleet.rs): the same tables and columns as
-- migrations/sqlite/0007_fleet.sql, in PostgreSQL's types. Daemons claim due
-- routes with FOR UPDATE SKIP LOCKED and a lease token.
CREATE TABLE fleet_due (
    route_id    TEXT PRIMARY KEY,
    next_due    TIMESTAMPTZ NOT NULL,
    lease_token TEXT,
    lease_until TIMESTAMPTZ,
    locked_by   TEXT,
    cycles      BIGINT NOT NULL DEFAULT 0,
    done_by     TEXT,
    done_at     TIMESTAMPTZ
);
CREATE INDEX fleet_due_next ON fleet_due (next_due);
CREATE TABLE fleet_nodes (
    holder     TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL,
    claimed    BIGINT NOT NULL DEFAULT 0,
    done       BIGINT NOT NULL DEFAULT 0
);
