-- Several hosts (issue 18): nodes sharing this database heartbeat in
-- tb_node; a push to an environment with hosts becomes one rollout
-- (tb_rollout) of per-host deployments (tb_rollout_host), each an
-- ordinary queued deployment of the target environment@host that only
-- the host's node claims.

-- The rollout a deployment is one host's step of (a stamp, not a
-- reference: rollouts and deployments are pruned on their own), and the
-- node that must run it ('' any node: every deployment not a step).
ALTER TABLE tb_deployment ADD COLUMN rollout_id INTEGER;
ALTER TABLE tb_deployment ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX ix_deployment_rollout ON tb_deployment (rollout_id);

-- A push held for its checks (trigger: checks) that is released as a
-- rollout keeps its policy here (JSON), '' for a plain deployment.
ALTER TABLE tb_check_hold ADD COLUMN rollout TEXT NOT NULL DEFAULT '';

CREATE TABLE tb_node (
    name         TEXT   PRIMARY KEY CHECK (name <> ''),
    hostname     TEXT   NOT NULL DEFAULT '',
    pid          INTEGER NOT NULL DEFAULT 0,
    version      TEXT   NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

-- environment is the base environment (without @host); webhook_event_id
-- is a stamp, as in tb_check_hold. policy is the RolloutPolicy as JSON;
-- batch is the batch being deployed; next_at the time the rollout waits
-- for (a pause, a canary window), NULL when it waits for nothing.
CREATE TABLE tb_rollout (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    fraise           TEXT    NOT NULL CHECK (fraise <> ''),
    environment      TEXT    NOT NULL CHECK (environment <> ''),
    sha              TEXT    NOT NULL,
    ref              TEXT    NOT NULL DEFAULT '',
    trigger          TEXT    NOT NULL DEFAULT '',
    actor            TEXT    NOT NULL DEFAULT '',
    webhook_event_id INTEGER,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'rolling_back', 'succeeded',
        'failed', 'rolled_back', 'rollback_failed', 'superseded')),
    policy           TEXT    NOT NULL,
    migrate_host     TEXT    NOT NULL,
    batch            INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER,
    waiting_resume   INTEGER NOT NULL DEFAULT 0,
    canary_checked   INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    error            TEXT    NOT NULL DEFAULT '',
    superseded_by    INTEGER,
    CHECK ((finished_at IS NULL) = (status IN ('queued', 'running', 'rolling_back')))
);
-- One rollout waits and one runs per environment, as deployments do per target.
CREATE UNIQUE INDEX ux_rollout_queued ON tb_rollout (fraise, environment) WHERE status = 'queued';
CREATE UNIQUE INDEX ux_rollout_active ON tb_rollout (fraise, environment) WHERE status IN ('running', 'rolling_back');
CREATE INDEX ix_rollout_target ON tb_rollout (fraise, environment, id);
CREATE INDEX ix_rollout_status ON tb_rollout (status, id);
CREATE INDEX ix_rollout_webhook ON tb_rollout (webhook_event_id);

CREATE TABLE tb_rollout_host (
    rollout_id    INTEGER NOT NULL REFERENCES tb_rollout (id) ON DELETE CASCADE,
    host          TEXT    NOT NULL CHECK (host <> ''),
    position      INTEGER NOT NULL,
    batch         INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'deploying', 'succeeded', 'failed',
        'rolling_back', 'rolled_back', 'rollback_failed', 'skipped', 'lost')),
    deployment_id INTEGER,
    rollback_id   INTEGER,
    old_sha       TEXT    NOT NULL DEFAULT '',
    error         TEXT    NOT NULL DEFAULT '',
    started_at    INTEGER,
    finished_at   INTEGER,
    PRIMARY KEY (rollout_id, host)
);

DROP VIEW v_deployment_history;
CREATE VIEW v_deployment_history AS
SELECT d.id, d.fraise, d.environment, d.trigger, d.actor, d.requested_ref,
       d.old_sha, d.new_sha, d.release, d.status, d.started_at, d.finished_at,
       d.duration_ms, d.error, d.webhook_event_id, d.host, d.pid,
       strftime('%Y-%m-%dT%H:%M:%fZ', d.started_at / 1000.0, 'unixepoch') AS started_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', d.finished_at / 1000.0, 'unixepoch') AS finished_at_utc,
       d.rollout_id, d.node
FROM tb_deployment d;
