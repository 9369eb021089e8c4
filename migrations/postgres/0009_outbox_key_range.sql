-- SQLite's 0009 drops its `outbox_route_seq` for ranges of the outbox key.
-- PostgreSQL keeps the index: text order there follows the database's
-- collation, in which `#` need not sort just before `$`, so a key range is
-- not a safe way to find one alert's rows. The version moves in step.
COMMENT ON INDEX outbox_route_seq IS
    'One alert''s rows (close_alert, unfinished_alerts); SQLite uses key ranges instead (0009).';
