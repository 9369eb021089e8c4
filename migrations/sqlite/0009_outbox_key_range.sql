-- A route's alerts are found by a range of the outbox key instead of an
-- index of their own: every key has been `{route_id}#{seq}#{recipient}`
-- since the first schema, so the rows of one alert are exactly those whose
-- key starts with `{route_id}#{seq}#` (src/store/sqlite/outbox.rs). Each
-- alert's rows land on random leaves of every index over them, and each
-- commit rewrites those leaves into the WAL: one index fewer is about a
-- quarter fewer pages written per alert.
DROP INDEX IF EXISTS outbox_route_seq;
