package store

import (
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

var postgresDialect = &dialect{
	name:       "postgres",
	migrations: fsSub(migrationsFS, "migrations/postgres"),
	rebind:     rebindDollar,
	forUpdate:  " FOR UPDATE",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	notify:     "SELECT pg_notify('" + notifyChannel + "', ?)",
	// The base environment of a rollout has no row of its own to lock
	// (tb_fraise_state has its hosts'): a transaction-scoped advisory
	// lock, in a key space of its own (the first key).
	lockRollouts: "SELECT pg_advisory_xact_lock(18, hashtext(?))",
	// Any constant will do; it only has to be the same for every fraisier.
	migrationLock: "SELECT pg_advisory_xact_lock(7305451023)",
	// READ COMMITTED whatever the server's default_transaction_isolation:
	// the store's locking relies on each statement seeing what committed
	// before it began (a check made after taking a lock sees the
	// transaction that held it). Under REPEATABLE READ two nodes taking
	// over one push's requests at once would leave it accepted.
	txOptions:     &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	earlierPushes: earlierPushStatements(""),
}

func openPostgres(opts Options) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message can quote the URL, password included.
		return nil, errors.New("invalid PostgreSQL URL")
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "fraisier"
	}
	// Every statement is planned with its arguments' values. pgx keeps
	// statements prepared, and PostgreSQL then may settle on a generic
	// plan, one for any values: that plan cannot use a partial index
	// whose condition depends on a value (the replay lookup's accepted
	// pushes, a waiting request's status), and it assumes every status
	// and target as frequent as the average, so a lookup of a rare one
	// becomes a scan of a table that grows. Planning costs less than
	// such a scan as soon as the history is large.
	if _, ok := cfg.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	if opts.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	sdb := sql.OpenDB(opts.connector(stdlib.GetConnector(*cfg)))
	sdb.SetMaxIdleConns(4)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	return sdb, nil
}
