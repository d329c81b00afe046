package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// The PostgreSQL cluster is shared by the whole test binary: starting one
// costs a couple of seconds, a database per test costs milliseconds. It is
// started on first use, so a run without PostgreSQL tests pays nothing.
var sharedPG struct {
	once    sync.Once
	cluster *pgtest.Cluster
	err     error
	n       atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPG.cluster != nil {
		sharedPG.cluster.Stop()
	}
	os.Exit(code)
}

// pgSecret is the password every test URL carries. Trust authentication
// ignores it; tests look for it wherever it must not be.
const pgSecret = "TopSecret99"

// newPGDatabase creates a fresh database and returns its URL.
func newPGDatabase(t *testing.T) string {
	t.Helper()
	sharedPG.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		sharedPG.cluster, sharedPG.err = pgtest.Start(ctx)
	})
	if errors.Is(sharedPG.err, pgtest.ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", sharedPG.err)
	}
	if sharedPG.err != nil {
		t.Fatalf("start PostgreSQL: %v", sharedPG.err)
	}
	name := fmt.Sprintf("t%d_%s", sharedPG.n.Add(1), strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")))
	if len(name) > 60 {
		name = name[:60]
	}
	if err := sharedPG.cluster.CreateDatabase(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return sharedPG.cluster.URL(name, pgSecret)
}

// systemPython is Debian's interpreter, the one python3-django and alembic
// are installed for (python3 on PATH may be another one).
const systemPython = "/usr/bin/python3"

// needPython ends the test unless systemPython can import every module.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if _, err := os.Stat(systemPython); err != nil {
		testenv.Unavailable(t, "%s: %v", systemPython, err)
	}
	for _, mod := range modules {
		if out, err := exec.Command(systemPython, "-c", "import "+mod).CombinedOutput(); err != nil {
			testenv.Unavailable(t, "%s cannot import %s (apt-get install python3-%s): %v: %s", systemPython, mod, mod, err, out)
		}
	}
}

// writeFiles writes name → content under dir, creating directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sqliteURL is the URL of a database file in a fresh directory.
func sqliteURL(t *testing.T) string {
	return "sqlite:///" + filepath.Join(t.TempDir(), "app.db")
}

// noSecret fails the test if text shows the secret.
func noSecret(t *testing.T, what, text, secret string) {
	t.Helper()
	if secret != "" && strings.Contains(text, secret) {
		t.Errorf("%s shows the secret %q: %s", what, secret, text)
	}
}
