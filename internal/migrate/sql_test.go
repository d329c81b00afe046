package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// sqlBackends run the same suite: the sql tool must behave alike on both.
var sqlBackends = []struct {
	name   string
	newURL func(t *testing.T) string
}{
	{"sqlite", sqliteURL},
	{"postgres", newPGDatabase},
}

// queryInt runs a query returning one integer against the database at raw.
func queryInt(t *testing.T, raw, q string) int64 {
	t.Helper()
	u, err := parseDBURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	switch u.kind {
	case dbSQLite:
		db, err := openSQLite(t.Context(), u.path, false)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.QueryRowContext(t.Context(), q).Scan(&n)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	case dbPostgres:
		conn, err := pgx.Connect(t.Context(), connString(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return n
}

func execSQL(t *testing.T, raw, q string) {
	t.Helper()
	u, _ := parseDBURL(raw)
	switch u.kind {
	case dbSQLite:
		db, err := openSQLite(t.Context(), u.path, false)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	case dbPostgres:
		conn, err := pgx.Connect(t.Context(), connString(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func tableExists(t *testing.T, raw, table string) bool {
	t.Helper()
	u, _ := parseDBURL(raw)
	q := fmt.Sprintf(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'`, table)
	if u.kind == dbPostgres {
		q = fmt.Sprintf(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = '%s'`, table)
	}
	return queryInt(t, raw, q) == 1
}

// sqlProject is a release directory with a db/migrations directory.
type sqlProject struct {
	t   *testing.T
	dir string
	url string
}

func newSQLProject(t *testing.T, url string, files map[string]string) *sqlProject {
	p := &sqlProject{t: t, dir: t.TempDir(), url: url}
	p.write(files)
	return p
}

func (p *sqlProject) write(files map[string]string) {
	p.t.Helper()
	prefixed := map[string]string{}
	for k, v := range files {
		prefixed[filepath.Join("db", "migrations", k)] = v
	}
	writeFiles(p.t, p.dir, prefixed)
}

func (p *sqlProject) migrator(mod ...func(*Config)) *Migrator {
	p.t.Helper()
	cfg := Config{Tool: ToolSQL, Dir: p.dir, SQLDir: "db/migrations", URL: p.url}
	for _, f := range mod {
		f(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

func wantRevision(t *testing.T, m *Migrator, want Revision) {
	t.Helper()
	got, err := m.Current(t.Context())
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	if got != want {
		t.Fatalf("Current = %q, want %q", got, want)
	}
}

var twoMigrations = map[string]string{
	"001_items.up.sql":   "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\nCREATE INDEX items_name ON items (name);\n",
	"001_items.down.sql": "DROP TABLE items;\n",
	"002_price.up.sql":   "ALTER TABLE items ADD COLUMN price INTEGER;\n",
	"002_price.down.sql": "ALTER TABLE items DROP COLUMN price;\n",
}

func TestSQLTool(t *testing.T) {
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("lifecycle", func(t *testing.T) { testSQLLifecycle(t, b.newURL(t)) })
			t.Run("checksum", func(t *testing.T) { testSQLChecksum(t, b.newURL(t)) })
			t.Run("irreversible", func(t *testing.T) { testSQLIrreversible(t, b.newURL(t)) })
			t.Run("failing file", func(t *testing.T) { testSQLFailingFile(t, b.newURL(t)) })
			t.Run("out of order", func(t *testing.T) { testSQLOutOfOrder(t, b.newURL(t)) })
			t.Run("concurrent up", func(t *testing.T) { testSQLConcurrentUp(t, b.newURL(t)) })
			t.Run("rebuild", func(t *testing.T) { testSQLRebuild(t, b.newURL(t)) })
		})
	}
}

func testSQLLifecycle(t *testing.T, url string) {
	ctx := t.Context()
	p := newSQLProject(t, url, twoMigrations)
	var out strings.Builder
	m := p.migrator(func(c *Config) { c.Output = &out })

	wantRevision(t, m, "")
	pend, err := m.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"001_items", "002_price"}, pend); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}
	if !m.CanDown() {
		t.Error("CanDown = false with every down file present")
	}
	if err := m.CheckDown(ctx, ""); err != nil {
		t.Errorf("CheckDown(\"\") before Up: %v", err)
	}

	rev, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if rev != "2" {
		t.Fatalf("Up = %q, want 2", rev)
	}
	wantRevision(t, m, "2")
	if !strings.Contains(out.String(), "002_price.up.sql") {
		t.Errorf("Output does not name the applied files:\n%s", out.String())
	}
	if pend, err := m.Pending(ctx); err != nil || len(pend) != 0 {
		t.Errorf("Pending after Up = %v, %v; want none", pend, err)
	}
	sum := sha256.Sum256([]byte(twoMigrations["001_items.up.sql"]))
	if n := queryInt(t, url, `SELECT count(*) FROM fraisier_schema_migrations WHERE version = 1 AND name = '001_items' AND checksum = '`+hex.EncodeToString(sum[:])+`'`); n != 1 {
		t.Errorf("tracking row for 001_items: %d rows with its checksum, want 1", n)
	}
	// Up again is a no-op.
	if rev, err := m.Up(ctx); err != nil || rev != "2" {
		t.Errorf("second Up = %q, %v; want 2, nil", rev, err)
	}

	if err := m.Down(ctx, "1"); err != nil {
		t.Fatalf("Down(1): %v", err)
	}
	wantRevision(t, m, "1")
	if n := queryInt(t, url, `SELECT count(*) FROM fraisier_schema_migrations`); n != 1 {
		t.Errorf("tracking rows after Down(1) = %d, want 1", n)
	}
	if err := m.Down(ctx, ""); err != nil {
		t.Fatalf("Down(\"\"): %v", err)
	}
	wantRevision(t, m, "")
	if tableExists(t, url, "items") {
		t.Error("items still exists after Down to the empty database")
	}
	if rev, err := m.Up(ctx); err != nil || rev != "2" {
		t.Fatalf("Up after Down = %q, %v", rev, err)
	}
	if err := m.Down(ctx, "abc"); !errors.Is(err, ErrBadRevision) {
		t.Errorf("Down(abc) = %v, want ErrBadRevision", err)
	}
}

func testSQLChecksum(t *testing.T, url string) {
	ctx := t.Context()
	p := newSQLProject(t, url, twoMigrations)
	m := p.migrator()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	p.write(map[string]string{
		"002_price.up.sql": "ALTER TABLE items ADD COLUMN price BIGINT;\n",
		"003_more.up.sql":  "CREATE TABLE more (x INTEGER);\n",
	})
	_, err := m.Up(ctx)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.File != "002_price.up.sql" {
		t.Fatalf("Up after editing 002 = %v, want a ChecksumError for 002_price.up.sql", err)
	}
	if !strings.Contains(err.Error(), "migration 002_price.up.sql changed after it was applied") {
		t.Errorf("error %q does not say which file changed", err)
	}
	if tableExists(t, url, "more") {
		t.Error("003 ran although 002 had changed")
	}
	if err := m.Down(ctx, "1"); !errors.As(err, &ce) {
		t.Errorf("Down after editing 002 = %v, want a ChecksumError", err)
	}
	if _, err := m.Pending(ctx); !errors.As(err, &ce) {
		t.Errorf("Pending after editing 002 = %v, want a ChecksumError", err)
	}
	wantRevision(t, m, "2")
}

func testSQLIrreversible(t *testing.T, url string) {
	ctx := t.Context()
	files := map[string]string{
		"001_items.up.sql":    "CREATE TABLE items (id INTEGER PRIMARY KEY);\n",
		"001_items.down.sql":  "DROP TABLE items;\n",
		"002_backfill.up.sql": "INSERT INTO items (id) VALUES (1), (2);\n",
		"003_tags.up.sql":     "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n",
		"003_tags.down.sql":   "DROP TABLE tags;\n",
	}
	p := newSQLProject(t, url, files)
	m := p.migrator()
	if m.CanDown() {
		t.Error("CanDown = true with 002 lacking a down file")
	}
	if rev, err := m.Up(ctx); err != nil || rev != "3" {
		t.Fatalf("Up = %q, %v", rev, err)
	}
	if err := m.CheckDown(ctx, "2"); err != nil {
		t.Errorf("CheckDown(2) = %v; undoing 003 alone is possible", err)
	}
	var ie *IrreversibleError
	if err := m.CheckDown(ctx, "1"); !errors.As(err, &ie) || ie.Migration != "002_backfill" {
		t.Errorf("CheckDown(1) = %v, want an IrreversibleError for 002_backfill", err)
	}
	err := m.Down(ctx, "1")
	if !errors.As(err, &ie) || ie.Migration != "002_backfill" {
		t.Fatalf("Down(1) = %v, want an IrreversibleError for 002_backfill", err)
	}
	if !strings.Contains(err.Error(), "002_backfill cannot be undone: there is no 002_backfill.down.sql") {
		t.Errorf("error %q does not explain itself", err)
	}
	// Refused up front: not even 003, which could be undone, was touched.
	wantRevision(t, m, "3")
	if !tableExists(t, url, "tags") {
		t.Error("003 was undone although the Down as a whole was refused")
	}
	if err := m.Down(ctx, "2"); err != nil {
		t.Fatalf("Down(2): %v", err)
	}
	wantRevision(t, m, "2")
}

func testSQLFailingFile(t *testing.T, url string) {
	ctx := t.Context()
	p := newSQLProject(t, url, map[string]string{
		"001_items.up.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY);\n",
		"002_half.up.sql":  "CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
		"003_tags.up.sql":  "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n",
	})
	m := p.migrator()
	_, err := m.Up(ctx)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "002_half.up.sql" {
		t.Fatalf("Up = %v, want a StepError for 002_half.up.sql", err)
	}
	if !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("error %q lacks the database's reason", err)
	}
	noSecret(t, "Up error", err.Error(), pgSecret)
	wantRevision(t, m, "1")
	if tableExists(t, url, "half") {
		t.Error("002's first statement survived its failure: the file was not one transaction")
	}
	if tableExists(t, url, "tags") {
		t.Error("003 ran after 002 failed")
	}
	if !tableExists(t, url, "items") {
		t.Error("001 was rolled back with 002")
	}
}

func testSQLOutOfOrder(t *testing.T, url string) {
	ctx := t.Context()
	p := newSQLProject(t, url, map[string]string{
		"001_items.up.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY);\n",
		"003_tags.up.sql":  "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n",
	})
	m := p.migrator()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	p.write(map[string]string{"002_late.up.sql": "CREATE TABLE late (id INTEGER);\n"})
	if _, err := m.Up(ctx); err == nil || !strings.Contains(err.Error(), "002_late.up.sql is older than the newest applied migration (3)") {
		t.Fatalf("Up with a migration below the applied ones = %v, want a refusal", err)
	}
	if tableExists(t, url, "late") {
		t.Error("the out-of-order migration ran")
	}
}

func testSQLConcurrentUp(t *testing.T, url string) {
	ctx := t.Context()
	files := map[string]string{"001_hits.up.sql": "CREATE TABLE hits (n INTEGER NOT NULL);\n"}
	for i := 2; i <= 8; i++ {
		files[fmt.Sprintf("%03d_hit.up.sql", i)] = fmt.Sprintf("INSERT INTO hits (n) VALUES (%d);\n", i)
	}
	p := newSQLProject(t, url, files)
	const workers = 4
	var wg sync.WaitGroup
	revs := make([]Revision, workers)
	errs := make([]error, workers)
	for w := range workers {
		m := p.migrator()
		wg.Go(func() { revs[w], errs[w] = m.Up(ctx) })
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil || revs[w] != "8" {
			t.Errorf("worker %d: Up = %q, %v; want 8, nil", w, revs[w], errs[w])
		}
	}
	if n := queryInt(t, url, `SELECT count(*) FROM hits`); n != 7 {
		t.Errorf("%d inserts ran, want 7: a migration was applied more than once", n)
	}
	if n := queryInt(t, url, `SELECT count(DISTINCT n) FROM hits`); n != 7 {
		t.Errorf("%d distinct inserts, want 7", n)
	}
	if n := queryInt(t, url, `SELECT count(*) FROM fraisier_schema_migrations`); n != 8 {
		t.Errorf("%d tracking rows, want 8", n)
	}
}

func testSQLRebuild(t *testing.T, url string) {
	ctx := t.Context()
	p := newSQLProject(t, url, twoMigrations)
	m := p.migrator()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `INSERT INTO items (id, name) VALUES (1, 'kept?')`)
	execSQL(t, url, `CREATE TABLE stray (x INTEGER)`)

	protected := p.migrator(func(c *Config) { c.Protected = true })
	if err := protected.Rebuild(ctx); !errors.Is(err, ErrRebuildRefused) {
		t.Fatalf("Rebuild on a protected environment = %v, want ErrRebuildRefused", err)
	}
	if n := queryInt(t, url, `SELECT count(*) FROM items`); n != 1 {
		t.Fatal("a refused Rebuild touched the data")
	}

	if err := m.Rebuild(ctx); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	wantRevision(t, m, "2")
	if n := queryInt(t, url, `SELECT count(*) FROM items`); n != 0 {
		t.Errorf("items holds %d rows after Rebuild, want 0", n)
	}
	if tableExists(t, url, "stray") {
		t.Error("a table outside the migrations survived Rebuild")
	}
}

func TestSQLToolMissingSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.db")
	p := newSQLProject(t, "sqlite:///"+path, twoMigrations)
	m := p.migrator()
	wantRevision(t, m, "")
	if pend, err := m.Pending(t.Context()); err != nil || len(pend) != 2 {
		t.Errorf("Pending = %v, %v; want both migrations", pend, err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("reading the revision created the database file")
	}
}

func TestPostgresSecretStaysOut(t *testing.T) {
	url := newPGDatabase(t)
	wrong := strings.Replace(url, "@/", "@/missing_", 1)
	p := newSQLProject(t, wrong, twoMigrations)
	m := p.migrator()
	_, err := m.Up(t.Context())
	if err == nil {
		t.Fatal("Up against a database that does not exist succeeded")
	}
	noSecret(t, "connect error", err.Error(), pgSecret)
	if !strings.Contains(err.Error(), "missing_") {
		t.Errorf("error %q does not say which database", err)
	}
}

// TestPostgresLockKeepsMigratorsApart holds the migration lock from another
// session: Up must wait for it (here until its timeout), then run once the
// lock is free.
func TestPostgresLockKeepsMigratorsApart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := newPGDatabase(t)
	holder, err := pgx.Connect(ctx, connString(url))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, advisoryLockKey); err != nil {
		t.Fatal(err)
	}
	p := newSQLProject(t, url, twoMigrations)
	m := p.migrator(func(c *Config) { c.Timeout = 300 * time.Millisecond })
	if _, err := m.Up(ctx); !errors.Is(err, execx.ErrTimeout) {
		t.Fatalf("Up while another migrator holds the lock = %v, want a timeout", err)
	}
	if tableExists(t, url, "items") {
		t.Fatal("Up migrated while another migrator held the lock")
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, advisoryLockKey); err != nil {
		t.Fatal(err)
	}
	if rev, err := m.Up(ctx); err != nil || rev != "2" {
		t.Fatalf("Up after the lock was released = %q, %v", rev, err)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		testenv.Unavailable(t, "sleep: %v", err)
	}
	m, err := New(Config{Tool: ToolCommand, Dir: t.TempDir(), Up: []string{sleep, "30"}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = m.Up(t.Context())
	if !errors.Is(err, execx.ErrTimeout) {
		t.Fatalf("Up = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Up took %s to time out after 200ms", d)
	}
}
