-- fraisier state database, SQLite.
--
-- Every time is INTEGER unix milliseconds, UTC: it sorts and compares as a
-- number, is unambiguous about zone, and is the same representation the
-- PostgreSQL schema uses (BIGINT), so both share one set of queries. The v_*
-- views add readable *_utc columns. Days in the rollups are unix days
-- (ms / 86400000), i.e. UTC calendar days.
--
-- tb_* tables are written by fraisier; v_* views are for reading.

CREATE TABLE tb_webhook_event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    forge       TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL DEFAULT '',
    event_type  TEXT    NOT NULL DEFAULT '',
    repository  TEXT    NOT NULL DEFAULT '',
    ref         TEXT    NOT NULL DEFAULT '',
    sha         TEXT    NOT NULL DEFAULT '',
    sender      TEXT    NOT NULL DEFAULT '',
    outcome     TEXT    NOT NULL DEFAULT ''
        CHECK (outcome IN ('', 'accepted', 'ignored', 'rejected', 'duplicate', 'superseded')),
    reason      TEXT    NOT NULL DEFAULT '',
    remote_addr TEXT    NOT NULL DEFAULT '',
    received_at INTEGER NOT NULL
);
-- Forges redeliver; a delivery seen twice must be recognised.
CREATE UNIQUE INDEX ux_webhook_event_delivery ON tb_webhook_event (forge, delivery_id) WHERE delivery_id <> '';
CREATE INDEX ix_webhook_event_forge ON tb_webhook_event (forge, id);
CREATE INDEX ix_webhook_event_outcome ON tb_webhook_event (outcome, id);

CREATE TABLE tb_deployment (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    fraise           TEXT    NOT NULL CHECK (fraise <> ''),
    environment      TEXT    NOT NULL CHECK (environment <> ''),
    trigger          TEXT    NOT NULL DEFAULT '',
    actor            TEXT    NOT NULL DEFAULT '',
    requested_ref    TEXT    NOT NULL DEFAULT '',
    old_sha          TEXT    NOT NULL DEFAULT ''
        CHECK (old_sha = '' OR (length(old_sha) IN (40, 64) AND unhex(old_sha) IS NOT NULL AND old_sha = lower(old_sha))),
    new_sha          TEXT    NOT NULL DEFAULT ''
        CHECK (new_sha = '' OR (length(new_sha) IN (40, 64) AND unhex(new_sha) IS NOT NULL AND new_sha = lower(new_sha))),
    release          TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed',
        'rolled_back', 'rollback_failed', 'interrupted', 'skipped', 'superseded')),
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    duration_ms      INTEGER,
    error            TEXT    NOT NULL DEFAULT '',
    webhook_event_id INTEGER REFERENCES tb_webhook_event (id),
    host             TEXT    NOT NULL DEFAULT '',
    pid              INTEGER NOT NULL DEFAULT 0,
    -- Incident accounting, so that stats over a partial day can be computed
    -- exactly from these rows: incident is 1 when this deployment opened an
    -- incident; restore_ms is the time to restore of the incident it closed.
    incident         INTEGER NOT NULL DEFAULT 0,
    restore_ms       INTEGER,
    CHECK ((finished_at IS NULL) = (status IN ('queued', 'running')))
);
-- history is newest first under any combination of filters; each index ends
-- in id so the newest rows come straight off it without a sort.
CREATE INDEX ix_deployment_target ON tb_deployment (fraise, environment, id);
CREATE INDEX ix_deployment_target_status ON tb_deployment (fraise, environment, status, id);
CREATE INDEX ix_deployment_fraise ON tb_deployment (fraise, id);
CREATE INDEX ix_deployment_fraise_status ON tb_deployment (fraise, status, id);
CREATE INDEX ix_deployment_env ON tb_deployment (environment, id);
CREATE INDEX ix_deployment_env_status ON tb_deployment (environment, status, id);
CREATE INDEX ix_deployment_status ON tb_deployment (status, id);
-- Stats over a window that starts mid-day scan that first day exactly.
CREATE INDEX ix_deployment_finished ON tb_deployment (finished_at);
CREATE INDEX ix_deployment_started ON tb_deployment (started_at);
-- Foreign key lookups from tb_webhook_event would otherwise scan.
CREATE INDEX ix_deployment_webhook ON tb_deployment (webhook_event_id);

CREATE TABLE tb_webhook_deployment (
    webhook_event_id INTEGER NOT NULL REFERENCES tb_webhook_event (id),
    deployment_id    INTEGER NOT NULL REFERENCES tb_deployment (id),
    -- Copied from the deployment so "webhooks for fraise X" needs no join.
    fraise           TEXT    NOT NULL,
    PRIMARY KEY (webhook_event_id, deployment_id)
) WITHOUT ROWID;
CREATE INDEX ix_webhook_deployment_deployment ON tb_webhook_deployment (deployment_id);
CREATE INDEX ix_webhook_deployment_fraise ON tb_webhook_deployment (fraise, webhook_event_id);

CREATE TABLE tb_deployment_step (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id    INTEGER NOT NULL REFERENCES tb_deployment (id),
    seq              INTEGER NOT NULL,
    name             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    exit_code        INTEGER,
    -- The last 64 KiB of the step's output; bytes, as a chunk may end
    -- inside a UTF-8 sequence.
    output           BLOB    NOT NULL DEFAULT x'',
    output_truncated INTEGER NOT NULL DEFAULT 0,
    detail           TEXT    NOT NULL DEFAULT '',
    UNIQUE (deployment_id, seq)
);

CREATE TABLE tb_fraise_state (
    fraise               TEXT    NOT NULL,
    environment          TEXT    NOT NULL,
    current_sha          TEXT    NOT NULL DEFAULT '',
    current_release      TEXT    NOT NULL DEFAULT '',
    status               TEXT    NOT NULL DEFAULT 'never',
    deployed_at          INTEGER,
    deployed_by          TEXT    NOT NULL DEFAULT '',
    last_deployment_id   INTEGER REFERENCES tb_deployment (id),
    broken_since         INTEGER,
    -- The rollback_failed deployment that opened the current incident.
    broken_deployment_id INTEGER REFERENCES tb_deployment (id),
    PRIMARY KEY (fraise, environment)
) WITHOUT ROWID;

CREATE TABLE tb_release (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    fraise        TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    sha           TEXT    NOT NULL DEFAULT '',
    path          TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL CHECK (state IN ('current', 'good', 'bad', 'new')),
    deployment_id INTEGER REFERENCES tb_deployment (id),
    created_at    INTEGER NOT NULL,
    UNIQUE (fraise, environment, name)
);
CREATE UNIQUE INDEX ux_release_current ON tb_release (fraise, environment) WHERE state = 'current';
CREATE INDEX ix_release_created ON tb_release (fraise, environment, created_at, id);

CREATE TABLE tb_lock (
    fraise      TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    owner       TEXT    NOT NULL CHECK (owner <> ''),
    host        TEXT    NOT NULL DEFAULT '',
    pid         INTEGER NOT NULL DEFAULT 0,
    reason      TEXT    NOT NULL DEFAULT '',
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (fraise, environment)
) WITHOUT ROWID;

-- Locks taken over or broken, and why: "who removed my lock" has an answer.
CREATE TABLE tb_lock_event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fraise      TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    event       TEXT    NOT NULL CHECK (event IN ('expired', 'holder_dead', 'forced')),
    owner       TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    new_owner   TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    at          INTEGER NOT NULL
);
CREATE INDEX ix_lock_event_target ON tb_lock_event (fraise, environment, id);

CREATE TABLE tb_job_state (
    fraise      TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    unit_hash   TEXT    NOT NULL DEFAULT '',
    last_result TEXT    NOT NULL DEFAULT '',
    last_run_at INTEGER,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (fraise, environment, job)
) WITHOUT ROWID;

-- The stats rollup, maintained by FinishDeployment in the same transaction
-- and rebuilt from tb_deployment by RebuildStats. A row holds a target's
-- totals over every deployment finished up to the end of day (a UTC day:
-- finished_at / 86400000), for each day the target had a finish. All-time
-- figures are a target's newest row; those of a window, its newest row less
-- its last row before the window (plus an exact scan of a partial first
-- day): a few rows per target however long the history or the window.
-- The counts are by final status; measured_ms sums the durations of all
-- but skipped and superseded deployments, which is also what hist counts.
-- hist is a JSON array of [bucket, count] pairs in ascending bucket order,
-- a bucket named by its upper bound in ms (durationBucket in stats.go:
-- exact below 64 ms, then log-scaled with a relative width of at most 2%).
-- incidents counts incidents opened, restored those restored, restore_ms
-- their times to restore (see DB.Stats). first_at is the earliest finish.
CREATE TABLE tb_stats_cumulative (
    fraise          TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    day             INTEGER NOT NULL,
    succeeded       INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    rolled_back     INTEGER NOT NULL,
    rollback_failed INTEGER NOT NULL,
    interrupted     INTEGER NOT NULL,
    skipped         INTEGER NOT NULL,
    superseded      INTEGER NOT NULL,
    measured_ms     INTEGER NOT NULL,
    incidents       INTEGER NOT NULL,
    restored        INTEGER NOT NULL,
    restore_ms      INTEGER NOT NULL,
    first_at        INTEGER NOT NULL,
    hist            TEXT    NOT NULL,
    -- A rowid table, not WITHOUT ROWID: the rows are kilobytes (hist), and
    -- finding a target's row for a day should not mean stepping over its
    -- other days' rows.
    PRIMARY KEY (fraise, environment, day)
);

CREATE VIEW v_fraise_status AS
SELECT s.fraise, s.environment, s.status, s.current_sha, s.current_release,
       s.deployed_at, s.deployed_by, s.last_deployment_id, s.broken_since,
       strftime('%Y-%m-%dT%H:%M:%fZ', s.deployed_at / 1000.0, 'unixepoch') AS deployed_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', s.broken_since / 1000.0, 'unixepoch') AS broken_since_utc
FROM tb_fraise_state s;

CREATE VIEW v_deployment_history AS
SELECT d.id, d.fraise, d.environment, d.trigger, d.actor, d.requested_ref,
       d.old_sha, d.new_sha, d.release, d.status, d.started_at, d.finished_at,
       d.duration_ms, d.error, d.webhook_event_id, d.host, d.pid,
       strftime('%Y-%m-%dT%H:%M:%fZ', d.started_at / 1000.0, 'unixepoch') AS started_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', d.finished_at / 1000.0, 'unixepoch') AS finished_at_utc
FROM tb_deployment d;

CREATE VIEW v_webhook_events AS
SELECT e.id, e.forge, e.delivery_id, e.event_type, e.repository, e.ref, e.sha,
       e.sender, e.outcome, e.reason, e.remote_addr, e.received_at,
       (SELECT group_concat(l.deployment_id, ',')
          FROM tb_webhook_deployment l WHERE l.webhook_event_id = e.id) AS deployment_ids,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.received_at / 1000.0, 'unixepoch') AS received_at_utc
FROM tb_webhook_event e;

-- All-time figures per target, from each target's newest rollup, with the
-- definitions of DB.Stats (median and p95 are bucket upper bounds: within 2%).
CREATE VIEW v_deployment_stats AS
WITH latest AS (
    SELECT c.*,
           c.succeeded + c.failed + c.rolled_back + c.rollback_failed + c.interrupted AS measured,
           c.succeeded + c.failed + c.rolled_back + c.rollback_failed + c.interrupted + c.skipped + c.superseded AS finished
    FROM tb_stats_cumulative c
    JOIN (SELECT fraise, environment, MAX(day) AS day FROM tb_stats_cumulative GROUP BY fraise, environment) m
      ON m.fraise = c.fraise AND m.environment = c.environment AND m.day = c.day
),
buckets AS (
    SELECT l.fraise, l.environment,
           CAST(json_extract(e.value, '$[0]') AS INTEGER) AS bucket,
           CAST(json_extract(e.value, '$[1]') AS INTEGER) AS n
    FROM latest l, json_each(l.hist) e
),
hist AS (
    SELECT fraise, environment, bucket,
           SUM(n) OVER (PARTITION BY fraise, environment ORDER BY bucket) AS cum,
           SUM(n) OVER (PARTITION BY fraise, environment) AS total
    FROM buckets
),
pct AS (
    -- Nearest rank: the median is the ceil(n/2)-th duration, p95 the
    -- ceil(0.95 n)-th.
    SELECT fraise, environment,
           MIN(CASE WHEN cum >= (total + 1) / 2 THEN bucket END) AS median_ms,
           MIN(CASE WHEN cum >= (95 * total + 99) / 100 THEN bucket END) AS p95_ms
    FROM hist
    GROUP BY fraise, environment
)
SELECT l.fraise, l.environment, l.finished, l.succeeded, l.failed, l.rolled_back,
       l.rollback_failed, l.interrupted, l.skipped, l.superseded,
       CASE WHEN l.measured > 0 THEN CAST(l.succeeded AS REAL) / l.measured ELSE 0.0 END AS success_rate,
       CASE WHEN l.measured > 0 THEN CAST(l.measured_ms AS REAL) / l.measured ELSE 0.0 END AS mean_duration_ms,
       COALESCE(p.median_ms, 0) AS median_duration_ms,
       COALESCE(p.p95_ms, 0) AS p95_duration_ms,
       l.finished / MAX(1.0, (unixepoch('subsec') * 1000.0 - l.first_at) / 86400000.0) AS deploys_per_day,
       CASE WHEN l.succeeded + l.rolled_back + l.rollback_failed > 0
            THEN CAST(l.rolled_back + l.rollback_failed AS REAL) / (l.succeeded + l.rolled_back + l.rollback_failed)
            ELSE 0.0 END AS change_failure_rate,
       l.incidents,
       CASE WHEN l.restored > 0 THEN CAST(l.restore_ms AS REAL) / l.restored ELSE 0.0 END AS mean_time_to_restore_ms,
       l.first_at
FROM latest l
LEFT JOIN pct p ON p.fraise = l.fraise AND p.environment = l.environment;
