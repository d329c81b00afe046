package store

import (
	"database/sql"
	"errors"
)

var postgresDialect = &dialect{
	name:       "postgres",
	migrations: fsSub(migrationsFS, "migrations/postgres"),
	rebind:     rebindDollar,
	forUpdate:  " FOR UPDATE",
}

func openPostgres(opts Options) (*sql.DB, error) {
	return nil, errors.New("the PostgreSQL backend is not built yet")
}
