-- Search jobs (src/store/jobs.rs): a job, its chunks (the unit workers
-- claim, with a lease) and its results. Timestamps are RFC 3339 text in UTC
-- with nine fractional digits, as in 0001.
--
-- A chunk covers combination indexes [first, end) of the job's expansion
-- (src/search/expand.rs). A worker claims it with a fresh lease token and
-- commits its results, its `done` state and the job's progress in one
-- transaction that first checks the token (the fence): a worker whose lease
-- was taken over commits nothing.
CREATE TABLE search_jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    owner_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    spec          TEXT NOT NULL,
    watch         INTEGER NOT NULL DEFAULT 0,
    watch_id      INTEGER,
    state         TEXT NOT NULL CHECK (state IN
                      ('pending', 'running', 'interrupted', 'completed', 'failed', 'cancelled')),
    total         INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    found         INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    checkpoint_at TEXT,
    finished_at   TEXT,
    updated_at    TEXT NOT NULL
);
CREATE INDEX search_jobs_owner ON search_jobs (owner_id, created_at);
CREATE TABLE search_chunks (
    job_id      TEXT NOT NULL REFERENCES search_jobs (id) ON DELETE CASCADE,
    chunk       INTEGER NOT NULL,
    first       INTEGER NOT NULL,
    end_index   INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('available', 'running', 'done', 'cancelled')),
    lease_token TEXT,
    lease_until TEXT,
    locked_by   TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, chunk)
);
CREATE INDEX search_chunks_claim ON search_chunks (state, job_id, chunk);
CREATE TABLE search_results (
    job_id           TEXT NOT NULL REFERENCES search_jobs (id) ON DELETE CASCADE,
    combo            INTEGER NOT NULL,
    origin           TEXT NOT NULL,
    destination      TEXT NOT NULL,
    depart           TEXT NOT NULL,
    return_date      TEXT,
    price_minor      INTEGER,
    currency         TEXT,
    airline          TEXT,
    stops            INTEGER,
    duration_minutes INTEGER,
    source           TEXT,
    verdict          TEXT,
    link             TEXT,
    error            TEXT,
    fetched_at       TEXT NOT NULL,
    PRIMARY KEY (job_id, combo)
);
CREATE INDEX search_results_price ON search_results (job_id, price_minor, combo);
