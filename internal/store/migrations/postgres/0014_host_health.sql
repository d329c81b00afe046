-- Each node probes the health of its own host's targets (env@host) and
-- records the answer here, so that every node, status and the dashboard
-- can show the health of a host that is not theirs. One row per target,
-- replaced at each probe: node is the node that checked, checked_at its
-- clock at the answer, detail why it was unhealthy (capped, scrubbed of
-- the configuration's secrets by the node before it is written).
CREATE TABLE tb_host_health (
    fraise      TEXT    NOT NULL CHECK (fraise <> ''),
    environment TEXT    NOT NULL CHECK (environment <> ''),
    node        TEXT    NOT NULL CHECK (node <> ''),
    checked_at  BIGINT  NOT NULL,
    healthy     BOOLEAN NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (fraise, environment)
);
