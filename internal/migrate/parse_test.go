package migrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/google/go-cmp/cmp"
)

func TestParseDBURL(t *testing.T) {
	tests := []struct {
		url     string
		want    dbURL
		wantErr string
	}{
		{url: "sqlite:////var/lib/app/app.db", want: dbURL{kind: dbSQLite, scheme: "sqlite", path: "/var/lib/app/app.db"}},
		{url: "sqlite+pysqlite:////srv/x.sqlite3", want: dbURL{kind: dbSQLite, scheme: "sqlite+pysqlite", path: "/srv/x.sqlite3"}},
		{url: "sqlite:///app.db", wantErr: "relative path"},
		{url: "sqlite://app.db", wantErr: "four slashes"},
		{url: "sqlite:////x.db?mode=ro", wantErr: "query parameters"},
		{url: "postgres://alice:s3cr%40t@db.example:6543/shop?sslmode=require", want: dbURL{
			kind: dbPostgres, scheme: "postgres", user: "alice", password: "s3cr@t",
			hosts: []string{"db.example"}, ports: []string{"6543"}, dbname: "shop",
		}},
		{url: "postgresql+psycopg://bob@h1:5432,h2/app", want: dbURL{
			kind: dbPostgres, scheme: "postgresql+psycopg", user: "bob",
			hosts: []string{"h1", "h2"}, ports: []string{"5432", ""}, dbname: "app",
		}},
		{url: "postgres://[::1]:5433/x", want: dbURL{kind: dbPostgres, scheme: "postgres", hosts: []string{"::1"}, ports: []string{"5433"}, dbname: "x"}},
		{url: "postgres:///app?host=/run/postgresql&password=pw", want: dbURL{kind: dbPostgres, scheme: "postgres", password: "pw", dbname: "app"}},
		{url: "postgres:app", wantErr: "postgres://"},
		{url: "mysql://u:p@h/db", want: dbURL{kind: dbOther, scheme: "mysql"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseDBURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.params = nil
			if diff := cmp.Diff(tt.want, *got, cmp.AllowUnexported(dbURL{})); diff != "" {
				t.Errorf("parseDBURL (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPGEnv(t *testing.T) {
	tests := []struct {
		url     string
		want    []string
		wantErr string
	}{
		{
			url:  "postgres://alice:p%20w@db:6543/shop?sslmode=require&application_name=x",
			want: []string{"PGAPPNAME=x", "PGDATABASE=shop", "PGHOST=db", "PGPASSWORD=p w", "PGPORT=6543", "PGSSLMODE=require", "PGUSER=alice"},
		},
		{
			url:  "postgres://u@h1:5432,h2/app",
			want: []string{"PGDATABASE=app", "PGHOST=h1,h2", "PGPORT=5432,5432", "PGUSER=u"},
		},
		{
			url:  "postgres:///app?host=/tmp/sock&port=5433",
			want: []string{"PGDATABASE=app", "PGHOST=/tmp/sock", "PGPORT=5433"},
		},
		{url: "postgres://h/app?pool_max_conns=4", wantErr: `"pool_max_conns"`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := parseDBURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := u.pgEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pgEnv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretsScrub(t *testing.T) {
	const raw = "postgres://alice:Sup3r%2Fsecret@db/shop?sslmode=disable"
	s := newSecrets(raw)
	tests := []struct{ in, want string }{
		{"connect to " + raw + " failed", "connect to postgres://alice:xxxxx@db/shop?sslmode=disable failed"},
		{"password Sup3r/secret rejected", "password xxxxx rejected"},
		{"escaped Sup3r%2Fsecret", "escaped xxxxx"},
		{"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		if got := s.scrub(tt.in); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}

	inner := fmt.Errorf("dial %s: %w", raw, execx.ErrTimeout)
	err := s.scrubError(fmt.Errorf("migrate: %w", inner))
	if strings.Contains(err.Error(), "Sup3r") {
		t.Errorf("scrubbed error still holds the password: %v", err)
	}
	if !errors.Is(err, execx.ErrTimeout) {
		t.Errorf("scrubbed error lost errors.Is(ErrTimeout): %v", err)
	}

	exit := &execx.ExitError{Argv: []string{"tool"}, Code: 1, Output: "traceback\nurl=" + raw + "\nboom"}
	err = s.scrubExit(exit)
	var ee *execx.ExitError
	if !errors.As(err, &ee) || strings.Contains(ee.Output, "Sup3r") || !strings.Contains(ee.Output, "boom") {
		t.Errorf("scrubExit = %#v, want an ExitError with the output scrubbed", err)
	}

	var sb strings.Builder
	w := &scrubWriter{w: &sb, s: s}
	for _, chunk := range []string{"line one\nuses Sup3r", "/secret here\nand a tail Sup3", "r/secret"} {
		w.Write([]byte(chunk))
	}
	w.flush()
	if got, want := sb.String(), "line one\nuses xxxxx here\nand a tail xxxxx"; got != want {
		t.Errorf("scrubWriter wrote %q, want %q", got, want)
	}
}

func TestCheckToken(t *testing.T) {
	tests := []struct {
		rev Revision
		ok  bool
	}{
		{"", true},
		{"a1b2c3d4e5f6", true},
		{"20260101_add.x:y+z-1", true},
		{"-1", false},
		{"--sql", false},
		{"a b", false},
		{"$(rm -rf /)", false},
		{"a;b", false},
		{"rev\n", false},
	}
	for _, tt := range tests {
		err := checkToken(tt.rev)
		if (err == nil) != tt.ok {
			t.Errorf("checkToken(%q) = %v, want ok=%v", tt.rev, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRevision) {
			t.Errorf("checkToken(%q) = %v, want ErrBadRevision", tt.rev, err)
		}
	}
}

func TestDjangoRevision(t *testing.T) {
	tests := []struct {
		state map[string]string
		want  Revision
	}{
		{nil, ""},
		{map[string]string{"shop": "zero", "blog": "zero"}, ""},
		{map[string]string{"shop": "0002_price", "blog": "zero", "auth": "0012_x"}, `{"auth":"0012_x","blog":"zero","shop":"0002_price"}`},
	}
	for _, tt := range tests {
		got := DjangoRevision(tt.state)
		if got != tt.want {
			t.Errorf("DjangoRevision(%v) = %q, want %q", tt.state, got, tt.want)
		}
		back, err := ParseDjangoRevision(got)
		if err != nil {
			t.Fatalf("ParseDjangoRevision(%q): %v", got, err)
		}
		if DjangoRevision(back) != got {
			t.Errorf("round trip of %q gave %q", got, DjangoRevision(back))
		}
	}
	for _, bad := range []Revision{`[1]`, `{"shop": 3}`, `{"shop":"0001 x"}`, `{"-x":"0001"}`, `{"shop":"--fake"}`, `nope`} {
		if _, err := ParseDjangoRevision(bad); !errors.Is(err, ErrBadRevision) {
			t.Errorf("ParseDjangoRevision(%q) = %v, want ErrBadRevision", bad, err)
		}
	}
}

func TestParseShowMigrationsList(t *testing.T) {
	out := `System check identified some issues:

WARNINGS:
?: (models.W042) Auto-created primary key used when not defining a primary key type.
admin
 (no migrations)
blog
 [X] 0001_initial
 [ ] 0002_tags
shop
 [X] 0001_initial
 [X] 0002_price (applied at 2026-01-02 10:00:00)
 [ ] 0003_stock
tags
 [ ] 0001_initial
`
	state, known := parseShowMigrationsList(out)
	wantState := map[string]string{"blog": "0001_initial", "shop": "0002_price", "tags": "zero"}
	if diff := cmp.Diff(wantState, state); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	wantKnown := map[string][]string{
		"blog": {"0001_initial", "0002_tags"},
		"shop": {"0001_initial", "0002_price", "0003_stock"},
		"tags": {"0001_initial"},
	}
	if diff := cmp.Diff(wantKnown, known); diff != "" {
		t.Errorf("known (-want +got):\n%s", diff)
	}
}

func TestDjangoDownPlan(t *testing.T) {
	plan := []djangoPlanned{
		{"shop", "0001_initial", true}, {"blog", "0001_initial", true},
		{"shop", "0002_price", true}, {"blog", "0002_tags", true}, {"shop", "0003_stock", true},
	}
	known := map[string][]string{"shop": {"0001_initial", "0002_price", "0003_stock"}, "blog": {"0001_initial", "0002_tags"}}
	cur := map[string]string{"shop": "0003_stock", "blog": "0002_tags"}
	tests := []struct {
		name    string
		want    map[string]string
		moves   []djangoMove
		wantErr string
	}{
		{"nothing to do", cur, nil, ""},
		{"newest first", map[string]string{"shop": "0001_initial", "blog": "0001_initial"},
			[]djangoMove{{"shop", "0001_initial"}, {"blog", "0001_initial"}}, ""},
		{"absent app goes to zero", map[string]string{"shop": "0002_price"},
			[]djangoMove{{"shop", "0002_price"}, {"blog", "zero"}}, ""},
		{"unknown migration", map[string]string{"shop": "0009_future", "blog": "0002_tags"}, nil, "0009_future is not in this release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			moves, err := djangoDownPlan(cur, tt.want, known, plan)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.moves, moves, cmp.AllowUnexported(djangoMove{})); diff != "" {
				t.Errorf("moves (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAlembicCurrent(t *testing.T) {
	logs := "INFO  [alembic.runtime.migration] Context impl SQLiteImpl.\nINFO  [alembic.runtime.migration] Will assume non-transactional DDL.\n"
	tests := []struct {
		out     string
		want    Revision
		wantErr error
	}{
		{logs, "", nil},
		{logs + "a1b2c3d4e5f6\n", "a1b2c3d4e5f6", nil},
		{logs + "b2c3d4e5f6a7 (head)\n", "b2c3d4e5f6a7", nil},
		{logs + "c3 (feature) (head) (mergepoint)\n", "c3", nil},
		{logs + "aaa (head)\nbbb (head)\n", "", ErrMultipleHeads},
	}
	for _, tt := range tests {
		got, err := parseAlembicCurrent(tt.out)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("parseAlembicCurrent(%q) = %q, %v; want %q, %v", tt.out, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAlembicPending(t *testing.T) {
	history := `d4 -> e5 (head), 
c3 -> d4, add index
a1, b2 -> c3 (mergepoint), merge
<base> -> b2, branch two
a0 -> a1, add name
<base> -> a0, create items
`
	tests := []struct {
		cur  Revision
		want []string
	}{
		{"", []string{"a0: create items", "a1: add name", "b2: branch two", "c3: merge", "d4: add index", "e5"}},
		{"a1", []string{"b2: branch two", "c3: merge", "d4: add index", "e5"}},
		{"c3", []string{"d4: add index", "e5"}},
		{"d4", []string{"e5"}},
		{"e5", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, alembicPending(history, tt.cur)); diff != "" {
			t.Errorf("alembicPending(%q) (-want +got):\n%s", tt.cur, diff)
		}
	}
}

func TestStepNames(t *testing.T) {
	alembicOut := `INFO  [alembic.runtime.migration] Running upgrade  -> a1, create items
INFO  [alembic.runtime.migration] Running upgrade a1 -> b2, add name
Traceback (most recent call last):
RuntimeError: boom`
	if got, want := alembicStep(alembicOut), "upgrade a1 -> b2 (add name)"; got != want {
		t.Errorf("alembicStep = %q, want %q", got, want)
	}
	djangoOut := "Running migrations:\n  Applying shop.0001_initial... OK\n  Applying shop.0002_price...Traceback (most recent call last):\n"
	if got, want := djangoStep(djangoOut), "applying shop.0002_price"; got != want {
		t.Errorf("djangoStep = %q, want %q", got, want)
	}
	if got := djangoStep("  Applying shop.0001_initial... OK\n"); got != "" {
		t.Errorf("djangoStep of a clean run = %q, want none", got)
	}
}

func TestLoadSQLDir(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		want    []string // name:reversible
		wantErr string
	}{
		{"ordered by number", []string{"010_c.up.sql", "2_b.up.sql", "2_b.down.sql", "001_a.up.sql", "001_a.down.sql", "README.md"},
			[]string{"001_a:true", "2_b:true", "010_c:false"}, ""},
		{"duplicate version", []string{"001_a.up.sql", "1_b.up.sql"}, nil, "share version 1"},
		{"stray sql file", []string{"001_a.up.sql", "002-b.up.sql"}, nil, "002-b.up.sql: want NNN_name.up.sql"},
		{"down without up", []string{"001_a.up.sql", "002_b.down.sql"}, nil, "002_b.down.sql has no .up.sql"},
		{"names differ", []string{"001_a.up.sql", "001_b.down.sql"}, nil, "share version 1 but not a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("-- "+f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			migs, err := loadSQLDir(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range migs {
				got = append(got, fmt.Sprintf("%s:%v", m.name, m.downPath != ""))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("loadSQLDir (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	const url = "postgres://app:hunter22@db/app"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no tool", Config{Dir: "/srv"}, "no migration tool"},
		{"unknown tool", Config{Tool: "flyway", Dir: "/srv"}, `unknown migration tool "flyway"`},
		{"no dir", Config{Tool: ToolAlembic}, "no release directory"},
		{"url in argv", Config{Tool: ToolCommand, Dir: "/srv", URL: url, Up: []string{"migrate", "-database", url, "up"}}, "appears in the up argv"},
		{"password in argv", Config{Tool: ToolCommand, Dir: "/srv", URL: url, Up: []string{"migrate", "--password=hunter22"}}, "appears in the up argv"},
		{"command without up", Config{Tool: ToolCommand, Dir: "/srv"}, "needs an up argv"},
		{"argv for another tool", Config{Tool: ToolDjango, Dir: "/srv", Up: []string{"x"}}, "for the command tool"},
		{"program for django", Config{Tool: ToolDjango, Dir: "/srv", Program: ".venv/bin/django-admin"}, "program is for alembic and confiture"},
		{"program for sql", Config{Tool: ToolSQL, Dir: "/srv", SQLDir: "db", URL: "sqlite:////x.db", Program: "psql"}, "program is for alembic and confiture"},
		{"sql without dir", Config{Tool: ToolSQL, Dir: "/srv", URL: "sqlite:////x.db"}, "SQLDir"},
		{"sql without url", Config{Tool: ToolSQL, Dir: "/srv", SQLDir: "db"}, "needs a database URL"},
		{"sql relative sqlite", Config{Tool: ToolSQL, Dir: "/srv", SQLDir: "db", URL: "sqlite:///x.db"}, "relative path"},
		{"sql mysql", Config{Tool: ToolSQL, Dir: "/srv", SQLDir: "db", URL: "mysql://u:hunter22@h/db"}, "not mysql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}
