-- v_deployment_stats read "now" with unixepoch('subsec'), whose modifier
-- came with SQLite 3.42: the sqlite3 program of Debian 12 (3.40) and
-- older read its deploys_per_day as NULL. julianday('now'), which every
-- SQLite knows, gives the same time to the millisecond.
DROP VIEW v_deployment_stats;

-- All-time figures per target, from each target's newest rollup, with the
-- definitions of DB.Stats (median and p95 are bucket upper bounds: within 2%).
CREATE VIEW v_deployment_stats AS
WITH latest AS (
    SELECT c.*,
           c.succeeded + c.failed + c.rolled_back + c.rollback_failed + c.interrupted AS measured,
           c.succeeded + c.failed + c.rolled_back + c.rollback_failed + c.interrupted + c.skipped + c.superseded AS finished
    FROM tb_stats_cumulative c
    JOIN (SELECT fraise, environment, MAX(day) AS day FROM tb_stats_cumulative GROUP BY fraise, environment) m
      ON m.fraise = c.fraise AND m.environment = c.environment AND m.day = c.day
),
buckets AS (
    SELECT l.fraise, l.environment,
           CAST(json_extract(e.value, '$[0]') AS INTEGER) AS bucket,
           CAST(json_extract(e.value, '$[1]') AS INTEGER) AS n
    FROM latest l, json_each(l.hist) e
),
hist AS (
    SELECT fraise, environment, bucket,
           SUM(n) OVER (PARTITION BY fraise, environment ORDER BY bucket) AS cum,
           SUM(n) OVER (PARTITION BY fraise, environment) AS total
    FROM buckets
),
pct AS (
    -- Nearest rank: the median is the ceil(n/2)-th duration, p95 the
    -- ceil(0.95 n)-th.
    SELECT fraise, environment,
           MIN(CASE WHEN cum >= (total + 1) / 2 THEN bucket END) AS median_ms,
           MIN(CASE WHEN cum >= (95 * total + 99) / 100 THEN bucket END) AS p95_ms
    FROM hist
    GROUP BY fraise, environment
)
SELECT l.fraise, l.environment, l.finished, l.succeeded, l.failed, l.rolled_back,
       l.rollback_failed, l.interrupted, l.skipped, l.superseded,
       CASE WHEN l.measured > 0 THEN CAST(l.succeeded AS REAL) / l.measured ELSE 0.0 END AS success_rate,
       CASE WHEN l.measured > 0 THEN CAST(l.measured_ms AS REAL) / l.measured ELSE 0.0 END AS mean_duration_ms,
       COALESCE(p.median_ms, 0) AS median_duration_ms,
       COALESCE(p.p95_ms, 0) AS p95_duration_ms,
       l.finished / MAX(1.0, ((julianday('now') - 2440587.5) * 86400000.0 - l.first_at) / 86400000.0) AS deploys_per_day,
       CASE WHEN l.succeeded + l.rolled_back + l.rollback_failed > 0
            THEN CAST(l.rolled_back + l.rollback_failed AS REAL) / (l.succeeded + l.rolled_back + l.rollback_failed)
            ELSE 0.0 END AS change_failure_rate,
       l.incidents,
       CASE WHEN l.restored > 0 THEN CAST(l.restore_ms AS REAL) / l.restored ELSE 0.0 END AS mean_time_to_restore_ms,
       l.first_at
FROM latest l
LEFT JOIN pct p ON p.fraise = l.fraise AND p.environment = l.environment;
