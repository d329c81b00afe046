package store_test

import (
	"testing"

	"github.com/fraiseql/fraisier/internal/store/storetest"
)

func TestRetentionSQLite(t *testing.T) { storetest.RunRetention(t, openSQLite) }

func TestRetentionPostgres(t *testing.T) { storetest.RunRetention(t, openPostgres) }
