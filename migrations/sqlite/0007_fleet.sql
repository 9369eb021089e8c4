-- Fleet coordination (src/store/fleet.rs): when each route is next due, and
-- which daemon holds it, so several daemons on one database look each route
-- up once per interval between them; and each node's heartbeat and totals
-- for `farewatch fleet`. Timestamps as in 0001.
CREATE TABLE fleet_due (
    route_id    TEXT PRIMARY KEY NOT NULL,
    next_due    TEXT NOT NULL,
    lease_token TEXT,
    lease_until TEXT,
    locked_by   TEXT,
    cycles      INTEGER NOT NULL DEFAULT 0,
    done_by     TEXT,
    done_at     TEXT
);
CREATE INDEX fleet_due_next ON fleet_due (next_due);
CREATE TABLE fleet_nodes (
    holder     TEXT PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL,
    claimed    INTEGER NOT NULL DEFAULT 0,
    done       INTEGER NOT NULL DEFAULT 0
);
