-- Deploy when CI says so (trigger: checks). A push routed to such an
-- environment is held here instead of queued, until the forge reports the
-- checks of its commit: passed, it is queued as if it had just arrived
-- (released); failed, it ends with the reason (failed). A newer push for
-- the environment supersedes the one held, as a newer push takes a queued
-- request over. At most one push is held per environment.
-- webhook_event_id and deployment_id are stamps, not references: events
-- and deployments are pruned on their own schedules.
CREATE TABLE tb_check_hold (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    fraise           TEXT    NOT NULL CHECK (fraise <> ''),
    environment      TEXT    NOT NULL CHECK (environment <> ''),
    forge            TEXT    NOT NULL,
    repository       TEXT    NOT NULL DEFAULT '',
    sha              TEXT    NOT NULL,
    ref              TEXT    NOT NULL DEFAULT '',
    actor            TEXT    NOT NULL DEFAULT '',
    -- The checks that must pass, one per line; '' lets the first result decide.
    checks           TEXT    NOT NULL DEFAULT '',
    webhook_event_id INTEGER NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('waiting', 'released', 'failed', 'superseded')),
    reason           TEXT    NOT NULL DEFAULT '',
    deployment_id    INTEGER,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    CHECK ((finished_at IS NULL) = (status = 'waiting'))
);
CREATE UNIQUE INDEX ux_check_hold_waiting ON tb_check_hold (fraise, environment) WHERE status = 'waiting';
-- A check result looks up the pushes held for its commit.
CREATE INDEX ix_check_hold_sha ON tb_check_hold (sha) WHERE status = 'waiting';
-- Marking a push superseded asks whether any of its holds still waits.
CREATE INDEX ix_check_hold_event ON tb_check_hold (webhook_event_id) WHERE status = 'waiting';
-- Retention removes finished holds by age.
CREATE INDEX ix_check_hold_finished ON tb_check_hold (finished_at) WHERE status <> 'waiting';

-- Every check result a forge reported for a commit that an environment's
-- pushes wait on, once per environment it may decide (those its
-- delivery's secret covers): a push delivered after its checks finished
-- (a forge's retry, a slow delivery) is decided by the results already
-- recorded for its environment, and a result signed with one fraise's own
-- secret never counts for another's.
CREATE TABLE tb_check_result (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    fraise           TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    forge            TEXT    NOT NULL,
    repository       TEXT    NOT NULL DEFAULT '',
    sha              TEXT    NOT NULL,
    name             TEXT    NOT NULL DEFAULT '',
    passed           INTEGER NOT NULL CHECK (passed IN (0, 1)),
    conclusion       TEXT    NOT NULL DEFAULT '',
    webhook_event_id INTEGER NOT NULL,
    received_at      INTEGER NOT NULL
);
CREATE INDEX ix_check_result_sha ON tb_check_result (sha, id);
CREATE INDEX ix_check_result_received ON tb_check_result (received_at);
