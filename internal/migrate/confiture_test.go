package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// confiture has no Debian package; these tests drive fakeConfiture, which
// records the argv this package builds and imitates confiture's documented
// command line. They check our side of the contract, not confiture.
func TestConfitureWithFake(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	program, log, state := fakeConfiture(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"db/migrations/001_init.up.sql":   "CREATE TABLE a (id int);",
		"db/migrations/001_init.down.sql": "DROP TABLE a;",
		"db/migrations/002_more.up.sql":   "CREATE TABLE b (id int);",
		"db/migrations/002_more.down.sql": "DROP TABLE b;",
	})
	url := "postgres://app:" + pgSecret + "@/app?host=/nonexistent"
	cfg := Config{Tool: ToolConfiture, Dir: dir, URL: url, Program: program, Env: []string{"FAKE_LOG=" + log, "FAKE_STATE=" + state}}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	wantRevision(t, m, "")
	pend, err := m.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"001_init", "002_more"}, pend); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}
	if rev, err := m.Up(ctx); err != nil || rev != "002" {
		t.Fatalf("Up = %q, %v; want 002", rev, err)
	}
	if err := m.Down(ctx, "001"); err != nil {
		t.Fatalf("Down(001): %v", err)
	}
	wantRevision(t, m, "001")
	if err := m.Down(ctx, ""); err != nil {
		t.Fatalf("Down to the empty database: %v", err)
	}
	wantRevision(t, m, "")
	if err := m.Rebuild(ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Rebuild without a config file = %v, want ErrUnsupported", err)
	}
	cfg.Config = "db/environments/dev.yaml"
	withConfig, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := withConfig.Rebuild(ctx); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}

	var mutating [][]string
	for _, c := range readFakeLog(t, log) {
		noSecret(t, "confiture argv", strings.Join(c.Argv, " "), pgSecret)
		if c.Env["CONFITURE_DATABASE_URL"] != url {
			t.Errorf("%v ran without the URL in CONFITURE_DATABASE_URL", c.Argv)
		}
		if _, ok := c.Env["DATABASE_URL"]; ok {
			t.Errorf("%v got DATABASE_URL, which confiture treats as an ambient accident", c.Argv)
		}
		if !slices.Contains(c.Argv[1:], "status") {
			mutating = append(mutating, c.Argv[1:])
		}
	}
	want := [][]string{
		{"migrate", "up", "--no-config"},
		{"migrate", "down-to", "001", "--no-config"},
		{"migrate", "down", "--steps", "1", "--no-config"},
		{"migrate", "rebuild", "--drop-schemas", "--yes", "--config", "db/environments/dev.yaml"},
	}
	if diff := cmp.Diff(want, mutating); diff != "" {
		t.Errorf("confiture commands (-want +got):\n%s", diff)
	}
}

func TestCommandTool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	fake := fakeTool(t, dir, "migrator")
	log := dir + "/argv.log"
	m, err := New(Config{
		Tool: ToolCommand, Dir: dir, URL: "sqlite:///" + dir + "/app.db",
		Up: []string{fake, "up"}, Down: []string{fake, "down", "--to={revision}"}, Current: []string{fake, "current"},
		Env: []string{"FAKE_LOG=" + log},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !m.CanDown() {
		t.Error("CanDown = false with down and current argv")
	}
	if rev, err := m.Up(ctx); err != nil || rev != "rev-7" {
		t.Fatalf("Up = %q, %v; want rev-7 (the current argv's last line)", rev, err)
	}
	if err := m.Down(ctx, "rev-3"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Revision{"$(reboot)", "-rf", "a b", "x;y"} {
		if err := m.Down(ctx, bad); !errors.Is(err, ErrBadRevision) {
			t.Errorf("Down(%q) = %v, want ErrBadRevision", bad, err)
		}
	}
	if _, err := m.Pending(ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Pending = %v, want ErrUnsupported", err)
	}
	calls := readFakeLog(t, log)
	var argvs [][]string
	for _, c := range calls {
		argvs = append(argvs, c.Argv[1:])
	}
	want := [][]string{{"up"}, {"current"}, {"down", "--to=rev-3"}}
	if diff := cmp.Diff(want, argvs); diff != "" {
		t.Fatalf("commands run (-want +got):\n%s", diff)
	}
	if got := calls[2].Env["FRAISIER_TARGET_REVISION"]; got != "rev-3" {
		t.Errorf("down ran with FRAISIER_TARGET_REVISION=%q, want rev-3", got)
	}

	upOnly, err := New(Config{Tool: ToolCommand, Dir: dir, Up: []string{fake, "up"}})
	if err != nil {
		t.Fatal(err)
	}
	if upOnly.CanDown() {
		t.Error("CanDown = true without a down argv")
	}
	if err := upOnly.Down(ctx, "x"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Down without a down argv = %v, want ErrUnsupported", err)
	}
}
