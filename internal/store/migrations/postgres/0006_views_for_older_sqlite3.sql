-- Version 6 changes SQLite's v_deployment_stats only (its "now" read in a
-- way every sqlite3 program knows); PostgreSQL's views are unchanged. The
-- two schemas keep the same version numbers.
SELECT 1;
