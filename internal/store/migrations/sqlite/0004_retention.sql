-- Retention: fraisier serve and fraisier prune remove what is older than
-- state.retention says (see retention.go).
--
-- A step whose output retention removed keeps its row and says when the
-- output went, so that show and logs can tell "removed" from "printed
-- nothing". NULL: the output is as recorded.
ALTER TABLE tb_deployment_step ADD COLUMN output_pruned_at INTEGER;

-- One row per kind of record pruned. pruned_before is how far pruning has
-- gone: for deployments, every one finished before it may be gone (a UTC
-- day boundary, so that stats can tell a window whose first day was
-- pruned); for step output, the finish time up to which the output of
-- finished deployments has been removed, where the next pass resumes; for
-- events, the last cutoff applied. 0: never pruned. The rows also serialise
-- pruning batches across PostgreSQL nodes (SELECT ... FOR UPDATE).
CREATE TABLE tb_retention (
    kind          TEXT    NOT NULL PRIMARY KEY CHECK (kind IN ('deployments', 'events', 'step_output')),
    pruned_before INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO tb_retention (kind) VALUES ('deployments'), ('events'), ('step_output');

-- Removing a deployment checks the releases that refer to it; without an
-- index that would read every release for every deployment removed.
CREATE INDEX ix_release_deployment ON tb_release (deployment_id);
