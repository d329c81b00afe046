-- The dashboard's deploys-per-day charts read each target's rollup counts
-- of the last 30 days (DB.DailyStats): from this index alone, without
-- the rows, whose duration histograms make them a few KB each.
CREATE INDEX ix_stats_cumulative_counts ON tb_stats_cumulative
    (fraise, environment, day, succeeded, failed, rolled_back, rollback_failed, interrupted, skipped, superseded);
