-- The outbox: one row per message fraisier owes someone (a notification,
-- a commit status on a forge), sent in the background. The payload never
-- holds a secret: the sender resolves the target's URL and token from
-- the configuration, by target name, at send time. A claimed row's
-- next_attempt_at is pushed past the attempt's lease so that no other
-- sender takes it meanwhile.
CREATE TABLE tb_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL CHECK (kind IN ('notification', 'forge_status')),
    target          TEXT    NOT NULL,
    event           TEXT    NOT NULL DEFAULT '',
    deployment_id   INTEGER,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'failed', 'given_up')),
    last_error      TEXT    NOT NULL DEFAULT '',
    sent_at         INTEGER
);
-- The sender's due rows; fraisier notifications --failed and the
-- metrics' counts by state; pruning what was sent or given up.
CREATE INDEX ix_outbox_due ON tb_outbox (next_attempt_at) WHERE state IN ('pending', 'failed');
CREATE INDEX ix_outbox_state ON tb_outbox (state, next_attempt_at);
CREATE INDEX ix_outbox_done ON tb_outbox (next_attempt_at) WHERE state IN ('sent', 'given_up');

-- One row per attempt to send an outbox message, and what came of it.
CREATE TABLE tb_outbox_attempt (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id   INTEGER NOT NULL REFERENCES tb_outbox (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('sent', 'failed', 'given_up')),
    http_status INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    duration_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_outbox_attempt_outbox ON tb_outbox_attempt (outbox_id, id);
