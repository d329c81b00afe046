package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// initRun runs fraisier init as a user other than root, in dir, with its
// secret under dir/credentials, and returns the exit code, stdout and
// stderr.
func initRun(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := cli.Env{Euid: 1000, Lookup: func(k string) (string, bool) {
		if k == "HOME" {
			return filepath.Join(dir, "home"), true
		}
		return "", false
	}}
	argv := append([]string{"init", "-o", filepath.Join(dir, "fraises.yaml"),
		"--credentials-dir", filepath.Join(dir, "credentials"), "--public-url", "https://deploy.example.com"}, args...)
	code := cli.Run(context.Background(), argv, cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut}, env)
	return code, out.String(), errOut.String()
}

// loadInit loads what init wrote, as config validate does.
func loadInit(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "fraises.yaml"), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("the configuration init wrote does not load: %v", err)
	}
	return cfg
}

// TestInitDetects runs init on a real repository per layout, through a
// file:// clone URL (a shallow fetch), and loads the configuration it
// wrote.
func TestInitDetects(t *testing.T) {
	cases := []struct {
		name        string
		files       map[string]string
		install     []string
		tool        string
		toolConfig  string
		wantSummary string
	}{
		{"uv-alembic", map[string]string{"uv.lock": "", "pyproject.toml": "", "alembic.ini": "[alembic]\n", "requirements.txt": ""},
			[]string{"uv", "sync", "--frozen"}, "alembic", "alembic.ini", "install     uv sync --frozen (uv.lock)"},
		{"pip-django", map[string]string{"requirements.txt": "django\n", "manage.py": "#!/usr/bin/env python\n"},
			[]string{"sh", "-c", "python3 -m venv .venv && .venv/bin/pip install --no-input -r requirements.txt"}, "django", "", "migrations  django (manage.py)"},
		{"npm", map[string]string{"package-lock.json": "{}", "package.json": "{}"},
			[]string{"npm", "ci"}, "", "", "install     npm ci (package-lock.json)"},
		{"go-confiture", map[string]string{"go.mod": "module x\n", "db/schema/00_init.sql": "", "db/migrations/001_a.up.sql": "", "db/environments/production.yaml": "name: x\n"},
			[]string{"go", "build", "-o", "bin/", "./..."}, "confiture", "db/environments/production.yaml", "migrations  confiture (db/)"},
		{"plain", map[string]string{"README.md": "hello\n", "db/migrations/001.up.sql": ""},
			nil, "", "", "install     none found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			o := newInitOrigin(t, root)
			for name, content := range tc.files {
				o.Write(name, content)
			}
			o.Commit("app")
			code, out, errOut := initRun(t, root, "--forge", "github", "--name", "shop", "file://"+o.Dir)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, tc.wantSummary) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantSummary, out)
			}
			env := loadInit(t, root).Fraises["shop"].Environments["production"]
			var install []string
			if env.Install != nil {
				install = env.Install.Argv
			}
			if !slices.Equal(install, tc.install) {
				t.Errorf("install = %q, want %q", install, tc.install)
			}
			tool, toolConfig := "", ""
			if env.Database != nil {
				tool, toolConfig = env.Database.Tool, env.Database.Config
			}
			if tool != tc.tool || toolConfig != tc.toolConfig {
				t.Errorf("database = %q %q, want %q %q", tool, toolConfig, tc.tool, tc.toolConfig)
			}
			if env.Branch != "main" || env.GitRepo != "file://"+o.Dir || env.Fraise.Type != "api" {
				t.Errorf("branch %q git_repo %q type %q", env.Branch, env.GitRepo, env.Fraise.Type)
			}
		})
	}
}

// TestInitSecret checks the secret file and that stdout holds the
// secret only with --show-secret.
func TestInitSecret(t *testing.T) {
	root := t.TempDir()
	o := newInitOrigin(t, root)
	o.Write("go.mod", "module x\n")
	o.Commit("app")
	code, out, errOut := initRun(t, root, "--forge", "gitea", "--name", "shop", o.Dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	path := filepath.Join(root, "credentials", "shop")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %s, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory mode %s, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	secret := strings.TrimSuffix(string(b), "\n")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
		t.Fatalf("secret is %d characters, want 64 hex (32 bytes)", len(secret))
	}
	if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
		t.Fatal("the secret was printed without --show-secret")
	}
	f := loadInit(t, root).Git.Gitea
	if string(f.FileSecret) != secret || f.SecretFile != path {
		t.Errorf("git.gitea reads %q from %q, want the file's secret from %s", f.FileSecret, f.SecretFile, path)
	}

	show := t.TempDir()
	code, out, errOut = initRun(t, show, "--forge", "gitea", "--name", "shop", "--show-secret", o.Dir)
	if code != 0 {
		t.Fatalf("--show-secret: exit %d: %s", code, errOut)
	}
	b, _ = os.ReadFile(filepath.Join(show, "credentials", "shop"))
	if !strings.Contains(out, "Secret             "+strings.TrimSpace(string(b))+"\n") {
		t.Errorf("--show-secret does not print the secret:\n%s", out)
	}
}

// TestInitNeverOverwrites: a second init changes no file unless --force.
func TestInitNeverOverwrites(t *testing.T) {
	root := t.TempDir()
	o := newInitOrigin(t, root)
	o.Write("uv.lock", "")
	o.Commit("app")
	if code, _, errOut := initRun(t, root, "--forge", "github", "--name", "shop", "--write-unit", o.Dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	files := []string{"fraises.yaml", "credentials/shop", "shop.service"}
	before := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		before[f] = string(b)
		// Another file of the same name: nothing may replace it.
		if err := os.WriteFile(filepath.Join(root, f), []byte("mine\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, _, errOut := initRun(t, root, "--forge", "github", "--name", "shop", "--write-unit", o.Dir)
	if code == 0 || !strings.Contains(errOut, "without --force") {
		t.Fatalf("second init: exit %d, %q; want a refusal naming --force", code, errOut)
	}
	for _, f := range files {
		if b, _ := os.ReadFile(filepath.Join(root, f)); string(b) != "mine\n" {
			t.Errorf("%s was changed without --force", f)
		}
	}
	if code, _, errOut := initRun(t, root, "--forge", "github", "--name", "shop", "--write-unit", "--force", o.Dir); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	for _, f := range files {
		if b, _ := os.ReadFile(filepath.Join(root, f)); string(b) == "mine\n" {
			t.Errorf("%s was not rewritten with --force", f)
		}
	}
	loadInit(t, root)
}

// TestInitForges: a checkout's origin tells the forge, its repository
// and the webhook form to fill in.
func TestInitForges(t *testing.T) {
	cases := []struct {
		origin, forge, repository string
		want                      []string
	}{
		{"git@github.com:acme/shop.git", "github", "acme/shop",
			[]string{"Payload URL        https://deploy.example.com/webhook/github\n", "Content type       application/json\n", "Just the push event"}},
		{"https://gitlab.com/acme/group/shop.git", "gitlab", "acme/group/shop",
			[]string{"URL                https://deploy.example.com/webhook/gitlab\n", "Secret token", "Push events (branch main)"}},
		{"ssh://git@codeberg.org/acme/shop.git", "gitea", "acme/shop",
			[]string{"Target URL         https://deploy.example.com/webhook/gitea\n", "POST content type  application/json\n", "Branch filter      main\n"}},
		{"https://bitbucket.org/acme/shop.git", "bitbucket", "acme/shop",
			[]string{"URL                https://deploy.example.com/webhook/bitbucket\n", "Repository: Push"}},
	}
	for _, tc := range cases {
		t.Run(tc.forge, func(t *testing.T) {
			root := t.TempDir()
			work := filepath.Join(root, "shop")
			testenv.Git(t, root, "init", "-q", "-b", "main", work)
			testenv.Git(t, work, "remote", "add", "origin", tc.origin)
			code, out, errOut := initRun(t, root, work)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			f := loadInit(t, root).Fraises["shop"]
			if f.ForgeKind() != tc.forge || f.Repository != tc.repository || f.Environments["production"].GitRepo != tc.origin {
				t.Errorf("forge %q repository %q git_repo %q", f.ForgeKind(), f.Repository, f.Environments["production"].GitRepo)
			}
		})
	}
}

// TestInitRefusesHostileSources: no git runs for them and nothing is
// written.
func TestInitRefusesHostileSources(t *testing.T) {
	for _, src := range []string{"ext::sh -c touch% /tmp/x", "http://example.com/a/b.git", "git://example.com/a/b",
		"-uupload-pack=touch", "https://example.com/a\nb", "fd::3"} {
		root := t.TempDir()
		code, _, errOut := initRun(t, root, "--forge", "github", src)
		if code != cli.ExitUsage {
			t.Errorf("init %q: exit %d (%s), want %d", src, code, errOut, cli.ExitUsage)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Errorf("init %q wrote %v", src, entries)
		}
	}
}

// newInitOrigin is a repository under root/forge: the bare origin and a
// work clone that commits to it.
func newInitOrigin(t *testing.T, root string) *testenv.Origin {
	t.Helper()
	dir := filepath.Join(root, "forge")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return testenv.NewOrigin(t, dir)
}

// TestInitSecretGroup: in a credentials directory its group may read (the
// packaged root:fraisier 0750), the secret is 0640 in that group, so that
// the fraisier user's own commands read it; a file there before is
// closed to others first.
func TestInitSecretGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "giving a file to another group needs root")
	}
	root := t.TempDir()
	creds := filepath.Join(root, "credentials")
	if err := os.Mkdir(creds, 0o750); err != nil {
		t.Fatal(err)
	}
	const group = 65534
	if err := os.Chown(creds, 0, group); err != nil {
		t.Fatal(err)
	}
	o := newInitOrigin(t, root)
	o.Write("go.mod", "module x\n")
	o.Commit("app")
	code, out, errOut := initRun(t, root, "--forge", "gitea", "--name", "shop", o.Dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(creds, "shop"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o640 || st.Gid != group || st.Uid != 0 {
		t.Errorf("secret file mode %o owner %d:%d, want 640 0:%d", st.Mode&0o777, st.Uid, st.Gid, group)
	}
	if !strings.Contains(out, "(mode 0640,") {
		t.Errorf("init does not say the mode it gave:\n%s", out)
	}
}
