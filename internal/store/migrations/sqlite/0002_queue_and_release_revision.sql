-- The deploy queue is tb_deployment itself: a request waits as a 'queued'
-- deployment. Per target at most one waits; a newer push supersedes it in
-- the same transaction that queues the push, so this index is the rule and
-- not a hope.
CREATE UNIQUE INDEX ux_deployment_queued ON tb_deployment (fraise, environment) WHERE status = 'queued';

-- The migration revision the database was at once this release was
-- deployed (after its migrations ran), so that a rollback to it knows which
-- revision to migrate down to. Empty when unknown (no database, or a
-- release older than this column).
ALTER TABLE tb_release ADD COLUMN migration_revision TEXT NOT NULL DEFAULT '';
