-- A queued deployment may have to wait for others that the same push
-- queued: those of the environments its after: list names, and of the
-- environment whose code it runs (shares_code_with). One row per
-- deployment it waits for, stamped with the webhook event of the push
-- that ordered it: a newer push that takes the waiting request over
-- orders it anew, and the rows of the push it replaced no longer count.
-- The queue claims a deployment only once every deployment it waits for
-- has finished, and ends it skipped when one of them deployed nothing.
-- No reference to tb_webhook_event: a row is a stamp, and events are
-- pruned on their own schedule.
CREATE TABLE tb_deployment_after (
    deployment_id    BIGINT NOT NULL REFERENCES tb_deployment (id) ON DELETE CASCADE DEFERRABLE,
    webhook_event_id BIGINT NOT NULL,
    after_id         BIGINT NOT NULL REFERENCES tb_deployment (id) ON DELETE CASCADE DEFERRABLE,
    PRIMARY KEY (deployment_id, webhook_event_id, after_id),
    CHECK (deployment_id <> after_id)
);
-- Deleting a deployment looks up the rows that reference it.
CREATE INDEX ix_deployment_after_after ON tb_deployment_after (after_id);
