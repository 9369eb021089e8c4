-- farewatch: one provider's fleet-wide rate limit (GCRA) and daily quota,
-- checked and spent in one atomic step. Loaded by src/fleet/limiter.rs
-- through redis::Script (EVALSHA, reloaded on NOSCRIPT).
--
-- Every key shares the hash tag {provider}, so a cluster keeps them in one slot.
--   KEYS[1]  fw:rl:{provider}                  TAT, the theoretical arrival time (µs)
--   KEYS[2]  fw:quota:{provider}:YYYY-MM-DD    requests spent on that UTC day, for the
--   KEYS[3]  fw:quota:{provider}:YYYY-MM-DD    caller's yesterday, today and tomorrow: the
--   KEYS[4]  fw:quota:{provider}:YYYY-MM-DD    script counts in the one that is today by
--                                              Redis's clock (KEYS[3] if none is)
--   KEYS[5]  fw:nodes:{provider}               callers seen lately (score: last call, µs)
--   ARGV[1]  emission interval in µs (1e6 / rate); 0: no rate limit
--   ARGV[2]  burst: requests allowed at once (at least 1)
--   ARGV[3]  requests allowed per UTC day; 0: no quota
--   ARGV[4]  the caller's node id
--   ARGV[5]  how long a node counts as live after its last call, µs
--   ARGV[6]  turns wanted (at least 1)
--   ARGV[7]  horizon, µs: a turn is granted when it comes within this long of
--            now (0: only turns due now, a plain GCRA check)
--
-- Returns four integers:
--   {turns granted (0: refused), offset µs, remaining quota after this call
--    (-1: no quota), live nodes}
-- Granted: turn i (0-based) is due at offset + i * interval from now (an
-- offset at or below zero is due now); the caller sleeps until its turn.
-- Refused: offset is the time until the next turn (beyond the horizon). A refusal with remaining 0 is the quota's (the offset runs to
-- 00:00 UTC); any other refusal is the rate's.
--
-- Time is Redis's own (TIME), in integer microseconds: about 1.8e15, well
-- below 2^53, so Lua's doubles hold it exactly and nothing is a fraction.

-- Redis before 5 replicates scripts verbatim, which TIME forbids; 5+ replicate
-- effects already and accept this as a no-op.
if redis.replicate_commands then
  pcall(redis.replicate_commands)
end

local DAY_US = 86400000000
local QUOTA_KEY_TTL_S = 172800 -- 2 days: a day's count outlives its day

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = math.max(tonumber(ARGV[2]), 1)
local quota = tonumber(ARGV[3])
local horizon = tonumber(ARGV[5])

local function int(n)
  return string.format('%.0f', n)
end

-- Who is out there (granted or not): the fallback's share of the limit.
redis.call('ZADD', KEYS[5], int(now), ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. int(now - horizon))
redis.call('PEXPIRE', KEYS[5], math.max(math.ceil(horizon / 1000), 1))
local live = redis.call('ZCARD', KEYS[5])

-- Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then
    y = y + 1
  end
  return string.format('%04d-%02d-%02d', y, m, d)
end

local day = math.floor(now / DAY_US)
local used = 0
local qkey = KEYS[3]
local wanted = math.max(tonumber(ARGV[6]), 1)
local reach = tonumber(ARGV[7])
if quota > 0 then
  local suffix = ':' .. civil(day)
  for i = 2, 4 do
    if string.sub(KEYS[i], -#suffix) == suffix then
      qkey = KEYS[i]
    end
  end
  used = tonumber(redis.call('GET', qkey) or '0')
  if used >= quota then
    return {0, (day + 1) * DAY_US - now, 0, live}
  end
  wanted = math.min(wanted, quota - used)
end

local granted = wanted
local offset = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then
    tat = now
  end
  -- Turn i is due at tat + (i + 1 - burst) * interval; those due within the
  -- horizon are granted, in order.
  local first = tat + (1 - burst) * interval
  local within = math.floor((now + reach - first) / interval) + 1
  if within < 1 then
    local remaining = -1
    if quota > 0 then
      remaining = quota - used
    end
    return {0, first - now, remaining, live}
  end
  granted = math.min(wanted, within)
  offset = first - now
  local new_tat = tat + granted * interval
  -- An idle key expires once its TAT has passed: a missing key is a full bucket.
  redis.call('SET', KEYS[1], int(new_tat), 'PX', math.max(math.ceil((new_tat - now) / 1000), 1))
end

local remaining = -1
if quota > 0 then
  used = redis.call('INCRBY', qkey, granted)
  if redis.call('TTL', qkey) < 0 then
    redis.call('EXPIRE', qkey, QUOTA_KEY_TTL_S)
  end
  remaining = quota - used
end
return {granted, offset, remaining, live}
