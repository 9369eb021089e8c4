-- Which run owns an outbox row, so overlapping runs neither resend nor fail
-- each other's alerts. Existing rows have no claim (dead: taken over).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_at TEXT;
