-- How each deployment's new release took over (restart: plain, socket or
-- blue_green; '' for deployments older than this column), and with
-- blue_green the colour the proxy sent traffic to when it ended ('' when
-- neither), so that status can say which colour serves.
ALTER TABLE tb_deployment ADD COLUMN restart_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE tb_deployment ADD COLUMN serving_colour TEXT NOT NULL DEFAULT '';
-- Per target, the newest deployment's restart mode and serving colour, so
-- that status reads one row per target rather than searching the history.
CREATE TABLE tb_restart_state (
    fraise         TEXT   NOT NULL,
    environment    TEXT   NOT NULL,
    deployment_id  BIGINT NOT NULL,
    restart_mode   TEXT   NOT NULL,
    serving_colour TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (fraise, environment)
);
