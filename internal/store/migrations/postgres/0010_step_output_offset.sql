-- How many bytes of a step's output were dropped from its start to keep
-- the last 64 KiB: the position of the first stored byte in everything
-- the step printed, so that a live log's positions stay the same when
-- the head of the output is cut.
ALTER TABLE tb_deployment_step ADD COLUMN output_offset BIGINT NOT NULL DEFAULT 0;
