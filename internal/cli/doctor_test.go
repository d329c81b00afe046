package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// doctorHost is a host doctor checks: a real git origin, a real systemd
// user manager running the test HTTP app as a unit, a state database.
type doctorHost struct {
	root, cfg, state string
	origin           *testenv.Origin
	mgr              *tsystemd.Manager
	unit             string
	port, servePort  int
}

// doctorSite is what fraises.yaml says of hello/production.
type doctorSite struct {
	gitRepo, appPath, unit string
	// migrator is the command tool's program.
	migrator string
	// github is git.github's secret setting, a YAML key: value.
	github string
}

func newDoctorHost(t *testing.T) *doctorHost {
	t.Helper()
	root := t.TempDir()
	h := &doctorHost{root: root, cfg: filepath.Join(root, "fraises.yaml"), state: filepath.Join(root, "state", "fraisier.db"),
		origin: testenv.NewOrigin(t, root), mgr: tsystemd.UserManager(t), port: testenv.FreePort(t), servePort: testenv.FreePort(t)}
	h.origin.Write("VERSION", "v1")
	h.origin.Commit("v1")
	for _, kv := range h.mgr.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	appDir := filepath.Join(root, "srv", "hello")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.unit = h.mgr.AppUnit(t, "doctor-hello.service", h.port, appDir)
	h.mgr.MustSystemctl(t, "start", h.unit)
	testenv.WaitFor(t, "the app answers", 10*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", h.port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	db, err := store.Open(context.Background(), store.Options{Path: h.state})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	h.write(t, h.healthy())
	return h
}

func (h *doctorHost) healthy() doctorSite {
	return doctorSite{gitRepo: h.origin.Dir, appPath: filepath.Join(h.root, "srv", "hello"), unit: h.unit, migrator: "sh",
		github: "secret: 4f2b8c1e9d3a7b6c5e0f1a2b3c4d5e6f"}
}

func (h *doctorHost) write(t *testing.T, s doctorSite) {
	t.Helper()
	cfg := fmt.Sprintf(`git:
  github:
    %s
server:
  listen: 127.0.0.1:%d
state:
  path: %s
fraises:
  hello:
    type: api
    repository: acme/hello
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        systemd_service: %s
        database:
          tool: command
          up: [%s, -c, "true"]
        health_check:
          url: http://127.0.0.1:%d/health
          timeout: 1s
`, s.github, h.servePort, h.state, s.gitRepo, s.appPath, s.unit, s.migrator, h.port)
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// doctor runs fraisier doctor in process and returns its exit code and
// standard output.
func (h *doctorHost) doctor(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := cli.Env{Lookup: func(k string) (string, bool) {
		if k == "FRAISIER_CONFIG" {
			return h.cfg, true
		}
		return os.LookupEnv(k)
	}, Euid: os.Geteuid()}
	code := cli.Run(context.Background(), append([]string{"doctor"}, args...), cli.Streams{Out: &out, Err: &errOut}, env)
	t.Logf("fraisier doctor %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String()
}

// wantLine checks that out has a line matching the regular expression.
func wantLine(t *testing.T, out, re string) {
	t.Helper()
	if !regexp.MustCompile("(?m)" + re).MatchString(out) {
		t.Errorf("no line matches %q", re)
	}
}

// TestDoctor runs doctor on one host: healthy first, then with each
// failure it reports produced for real, one at a time (a systemd user
// manager takes seconds to start, so they share it).
func TestDoctor(t *testing.T) {
	h := newDoctorHost(t)
	t.Run("healthy host", func(t *testing.T) { doctorHealthy(t, h) })
	t.Run("failures", func(t *testing.T) { doctorFailures(t, h) })
	t.Run("host failures", func(t *testing.T) { doctorHostFailures(t, h) })
	t.Run("broken state and config", func(t *testing.T) { doctorBrokenConfigAndState(t, h) })
}

// doctorHealthy: everything answers, every check is ok, exit 0. How fast
// is bench/doctorbench's to say (make bench), not a timed test's.
func doctorHealthy(t *testing.T, h *doctorHost) {
	code, out := h.doctor(t)
	if code != cli.ExitOK {
		t.Errorf("exit %d, want 0", code)
	}
	for _, check := range []string{"config", "secrets", "state", "remote", "app_path", "disk", "unit", "migrate", "health", "listen"} {
		wantLine(t, out, `^ok +`+check+` `)
	}
	wantLine(t, out, `^10 ok, 0 warn, 0 fail$`)

	code, out = h.doctor(t, "hello", "production", "--json")
	var got struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Check, Fraise, Environment, Subject, Result, Detail, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if code != cli.ExitOK || !got.OK || len(got.Checks) != 8 {
		t.Fatalf("--json: exit %d ok %v, %d checks (want 8: no listen check for one fraise)", code, got.OK, len(got.Checks))
	}
	for _, c := range got.Checks {
		if c.Result != "ok" || c.Fix != "" {
			t.Errorf("%s: %s %q (fix %q)", c.Check, c.Result, c.Detail, c.Fix)
		}
	}
}

// wantFail runs doctor and wants exit 14 and one failed line, matching re
// after "fail".
func (h *doctorHost) wantFail(t *testing.T, re string) {
	t.Helper()
	code, out := h.doctor(t)
	if code != cli.ExitCheckFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitCheckFailed)
	}
	wantLine(t, out, `^fail +`+re)
	wantLine(t, out, `^\d+ ok, \d+ warn, 1 fail$`)
}

// doctorFailures produces each failure doctor reports for real, one at a
// time, and checks its line and the exit code.
func doctorFailures(t *testing.T, h *doctorHost) {
	fail := h.wantFail

	t.Run("missing unit", func(t *testing.T) {
		s := h.healthy()
		s.unit = h.mgr.Unit("doctor-missing.service")
		h.write(t, s)
		defer h.write(t, h.healthy())
		fail(t, `unit +hello/production +`+regexp.QuoteMeta(s.unit)+` \(user\) +no such unit → fix: install `)
	})
	t.Run("unreachable remote", func(t *testing.T) {
		gone := filepath.Join(h.root, "gone.git")
		testenv.Git(t, h.root, "clone", "-q", "--bare", h.origin.Dir, gone)
		if err := os.RemoveAll(gone); err != nil {
			t.Fatal(err)
		}
		s := h.healthy()
		s.gitRepo = gone
		h.write(t, s)
		defer h.write(t, h.healthy())
		fail(t, `remote +hello/production +`+regexp.QuoteMeta(gone)+` +remote head main of .*→ fix: check git_repo`)
	})
	t.Run("unwritable app_path", func(t *testing.T) {
		s := h.healthy()
		s.appPath = filepath.Join(h.root, "srv", "not-a-dir")
		if err := os.WriteFile(s.appPath, []byte("a file where the directory should be\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		h.write(t, s)
		defer h.write(t, h.healthy())
		fail(t, `app_path +hello/production +\S+/not-a-dir +not a directory`)
	})
	t.Run("read-only app_path", func(t *testing.T) {
		s := h.healthy()
		s.appPath = filepath.Join(h.root, "srv", "read-only")
		readOnlyDir(t, s.appPath)
		h.write(t, s)
		defer h.write(t, h.healthy())
		fail(t, `app_path +hello/production +\S+/read-only +\S+ is not writable by uid \d+: (permission denied|read-only file system)`)
	})
	t.Run("migration program missing", func(t *testing.T) {
		s := h.healthy()
		s.migrator = "fraisier-no-such-migrator"
		h.write(t, s)
		defer h.write(t, h.healthy())
		fail(t, `migrate +hello/production +command +fraisier-no-such-migrator is not on PATH → fix: install it`)
	})
}

// doctorHostFailures: doctorFailures for the checks of the whole host
// (secrets, serve's listen address) and of what runs (the health check).
func doctorHostFailures(t *testing.T, h *doctorHost) {
	fail := h.wantFail
	t.Run("example secret", func(t *testing.T) {
		s := h.healthy()
		s.github = "secret: ${GITHUB_WEBHOOK_SECRET:-dev-secret-not-for-production}"
		h.write(t, s)
		defer h.write(t, h.healthy())
		fail(t, `secrets +- +git\.github +a secret is an example's default`)
	})
	t.Run("missing secret file", func(t *testing.T) {
		s := h.healthy()
		s.github = "secret_file: " + filepath.Join(h.root, "no-such-secret")
		h.write(t, s)
		defer h.write(t, h.healthy())
		code, out := h.doctor(t)
		if code != cli.ExitConfig {
			t.Errorf("exit %d, want %d", code, cli.ExitConfig)
		}
		wantLine(t, out, `^fail +config +- +\S+ +.*secret_file.*→ fix: fraisier config validate`)
	})
	t.Run("listen address taken", func(t *testing.T) {
		// Another program: an HTTP server that is not fraisier.
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.servePort))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler()}
		go srv.Serve(l)
		defer srv.Close()
		fail(t, `listen +- +127\.0\.0\.1:\d+ +in use by another program`)
	})
	t.Run("health check fails", func(t *testing.T) {
		h.mgr.MustSystemctl(t, "stop", h.unit)
		defer h.mgr.MustSystemctl(t, "start", h.unit)
		fail(t, `health +hello/production +http://127\.0\.0\.1:\d+/health +health: GET .*connection refused.* → fix: is the app running\?`)
	})
}

// doctorBrokenConfigAndState: a state database newer than this fraisier
// fails its line; a configuration that does not load stops doctor with
// exit 3. It leaves the host broken: it runs last.
func doctorBrokenConfigAndState(t *testing.T, h *doctorHost) {
	db, err := store.Open(context.Background(), store.Options{Path: h.state})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(context.Background(), "INSERT INTO tb_schema_migrations (version, applied_at) VALUES (9999, 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out := h.doctor(t)
	if code != cli.ExitCheckFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitCheckFailed)
	}
	wantLine(t, out, `^fail +state +- +\S+fraisier\.db +.*newer`)

	if err := os.WriteFile(h.cfg, []byte("fraises:\n  hello:\n    type: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = h.doctor(t)
	if code != cli.ExitConfig {
		t.Errorf("exit %d, want %d", code, cli.ExitConfig)
	}
	wantLine(t, out, `^fail +config +- +\S+fraises\.yaml +.*→ fix: fraisier config validate`)
	wantLine(t, out, `^0 ok, 0 warn, 1 fail$`)
}

// readOnlyDir makes dir a directory this process cannot write: mode 0555,
// or, for root, whom mode bits do not stop, a read-only bind mount of it.
func readOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	testenv.ReadOnly(t, dir)
}
