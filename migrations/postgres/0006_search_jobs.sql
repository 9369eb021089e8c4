-- Search jobs (src/store/jobs.rs): the same tables and columns as
-- migrations/sqlite/0006_search_jobs.sql, in PostgreSQL's types. Workers
-- claim chunks with FOR UPDATE SKIP LOCKED and a lease token.
CREATE TABLE search_jobs (
    id            TEXT PRIMARY KEY,
    owner_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    spec          TEXT NOT NULL,
    watch         BOOLEAN NOT NULL DEFAULT FALSE,
    watch_id      BIGINT,
    state         TEXT NOT NULL CHECK (state IN
                      ('pending', 'running', 'interrupted', 'completed', 'failed', 'cancelled')),
    total         BIGINT NOT NULL,
    done          BIGINT NOT NULL DEFAULT 0,
    found         BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    checkpoint_at TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX search_jobs_owner ON search_jobs (owner_id, created_at);
CREATE TABLE search_chunks (
    job_id      TEXT NOT NULL REFERENCES search_jobs (id) ON DELETE CASCADE,
    chunk       INTEGER NOT NULL,
    first       BIGINT NOT NULL,
    end_index   BIGINT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('available', 'running', 'done', 'cancelled')),
    lease_token TEXT,
    lease_until TIMESTAMPTZ,
    locked_by   TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, chunk)
);
CREATE INDEX search_chunks_claim ON search_chunks (state, job_id, chunk);
CREATE TABLE search_results (
    job_id           TEXT NOT NULL REFERENCES search_jobs (id) ON DELETE CASCADE,
    combo            BIGINT NOT NULL,
    origin           TEXT NOT NULL,
    destination      TEXT NOT NULL,
    depart           TEXT NOT NULL,
    return_date      TEXT,
    price_minor      BIGINT,
    currency         TEXT,
    airline          TEXT,
    stops            INTEGER,
    duration_minutes INTEGER,
    source           TEXT,
    verdict          TEXT,
    link             TEXT,
    error            TEXT,
    fetched_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, combo)
);
CREATE INDEX search_results_price ON search_results (job_id, price_minor, combo);
