-- Retention: see migrations/sqlite/0004_retention.sql.
ALTER TABLE tb_deployment_step ADD COLUMN output_pruned_at BIGINT;

CREATE TABLE tb_retention (
    kind          TEXT   NOT NULL PRIMARY KEY CHECK (kind IN ('deployments', 'events', 'step_output')),
    pruned_before BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO tb_retention (kind) VALUES ('deployments'), ('events'), ('step_output');

CREATE INDEX ix_release_deployment ON tb_release (deployment_id);
