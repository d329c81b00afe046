package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileCase is a fraises.yaml an attacker (or a careless copy-paste)
// wrote: validation must refuse it, at path, with a message saying what.
type hostileCase struct {
	name, yaml, path, says string
}

// jobWith is a scheduled fraise whose one job has the extra keys in extra.
func jobWith(extra string) string {
	return scheduledWith(base + "jobs:\n  - name: nightly\n    schedule: \"0 3 * * *\"\n    command: [bin/nightly]\n" + indent(extra, 4))
}

var hostileConfigs = []hostileCase{
	// Unit names: spaces, slashes, .., shell and newlines.
	{"unit with a space", apiWith(base + "systemd_service: \"my app\"\n"), prod + ".systemd_service", "which unit names cannot hold"},
	{"unit with a slash", apiWith(base + "systemd_service: system/hello\n"), prod + ".systemd_service", "which unit names cannot hold"},
	{"unit ..", apiWith(base + "systemd_service: \"..\"\n"), prod + ".systemd_service", "does not start with a letter or digit"},
	{"unit with ../", apiWith(base + "systemd_service: ../../etc/hello\n"), prod + ".systemd_service", "which unit names cannot hold"},
	{"unit with $()", apiWith(base + "systemd_service: \"$(touch /tmp/x)\"\n"), prod + ".systemd_service", "which unit names cannot hold"},
	{"unit with ;", apiWith(base + "systemd_service: \"api;reboot\"\n"), prod + ".systemd_service", "which unit names cannot hold"},
	{"unit with a newline", apiWith(base + "systemd_service: \"api\\nExecStart=/bin/sh\"\n"), prod + ".systemd_service", "which unit names cannot hold"},
	{"unit starting with -", apiWith(base + "systemd_service: \"--now\"\n"), prod + ".systemd_service", "does not start with a letter or digit"},
	{"job unit with a slash", jobWith("systemd_service: ../x.service\n"), "fraises.cron.environments.production.jobs[0].systemd_service", "which unit names cannot hold"},
	{"job timer with backticks", jobWith("systemd_timer: \"`id`\"\n"), "fraises.cron.environments.production.jobs[0].systemd_timer", "which unit names cannot hold"},

	// Clone sources git would run something for.
	{"git_repo transport helper", apiWith(base + "git_repo: \"ext::sh -c touch% /tmp/pwned\"\n"), prod + ".git_repo", "transport helper"},
	{"git_repo scp host as an option", apiWith(base + "git_repo: \"git@-oProxyCommand=touch:x\"\n"), prod + ".git_repo", "starting with -"},
	{"git_repo scp path as an option", apiWith(base + "git_repo: \"git@host:--upload-pack=touch\"\n"), prod + ".git_repo", "starting with -"},
	{"git_repo ssh host as an option", apiWith(base + "git_repo: \"ssh://-oProxyCommand=touch/x.git\"\n"), prod + ".git_repo", "starting with -"},
	{"git_repo option", apiWith(base + "git_repo: \"-u:x\"\n"), prod + ".git_repo", "starts with -"},
	{"git_repo $()", apiWith(base + "git_repo: \"$(touch /tmp/x)\"\n"), prod + ".git_repo", "is not a clone URL"},
	{"repository transport helper", strings.Replace(apiWith(base), "https://github.com/acme/api.git", "\"fd::17\"", 1), "fraises.api.repository", "transport helper"},

	// Paths: control characters, .., relative.
	{"app_path with a newline", apiWith("branch: main\napp_path: \"/srv/api\\nExecStart=/bin/sh\"\n"), prod + ".app_path", "control characters"},
	{"app_path with NUL", apiWith("branch: main\napp_path: \"/srv/api\\0\"\n"), prod + ".app_path", "control characters"},
	{"app_path with ..", apiWith("branch: main\napp_path: /srv/api/../../etc\n"), prod + ".app_path", ".. component"},
	{"app_path relative", apiWith("branch: main\napp_path: \"$(pwd)/api\"\n"), prod + ".app_path", "not an absolute path"},
	{"backup_dir with a newline", apiWith(base + "database: {tool: alembic, backup_dir: \"/var/b\\nx\"}\n"), prod + ".database.backup_dir", "control characters"},
	{"state.path with a newline", "state: {path: \"/var/lib/f.db\\n\"}\n" + apiWith(base), "state.path", "control characters"},
	{"shared leaving the release", apiWith(base + "shared: [../../etc/shadow]\n"), prod + ".shared[0]", "leaves the release"},
	{"shared with a newline", apiWith(base + "shared: [\".env\\nx\"]\n"), prod + ".shared[0]", "control characters"},
	{"install dir leaving the release", apiWith(base + "install: {command: [make], dir: ../../..}\n"), prod + ".install.dir", "leaves the release"},
	{"migrations dir with a tab", apiWith(base + "database: {tool: sql, dir: \"db\\tx\"}\n"), prod + ".database.dir", "control characters"},
	{"manage.py outside the release", apiWith(base + "database: {tool: django, manage: /usr/bin/python3}\n"), prod + ".database.manage", "must be relative"},
	{"secret_file with a newline", "git:\n  github: {secret_file: \"/run/s\\n\"}\n" + apiWith(base), "git.github.secret_file", "does not exist"},
	{"unix socket with a newline", "server: {listen: \"unix:/run/f.sock\\nx\"}\n" + apiWith(base), "server.listen", "control characters"},
	{"etl script outside the release", etlWith("branch: main\nshares_code_with: api/production\nscripts: [../../bin/sh]\n"), "fraises.etl.environments.production.scripts[0]", "leaves the release"},

	// argv and environments: no shell runs them, but NUL cannot be passed.
	{"install argv with NUL", apiWith(base + "install: {command: [make, \"a\\0b\"]}\n"), prod + ".install.command[1]", "NUL"},
	{"install env with NUL", apiWith(base + "install: {command: [make], env: {X: \"a\\0b\"}}\n"), prod + ".install.env.X", "NUL"},
	{"install env name injection", apiWith(base + "install: {command: [make], env: {\"X;touch /tmp/x\": a}}\n"), prod + ".install.env.X;touch /tmp/x", "not an environment variable name"},
	{"install program as an option", apiWith(base + "install: {command: [\"--exec=touch /tmp/x\"]}\n"), prod + ".install.command[0]", "starts with -"},
	{"install as a shell line", apiWith(base + "install: {command: [\"make; reboot\"]}\n"), prod + ".install.command[0]", "holds spaces"},
	{"health check argv with NUL", apiWith(base + "health_check: {command: [curl, \"\\0\"]}\n"), prod + ".health_check.command[1]", "NUL"},
	{"job argv with NUL", jobWith("timeout: 5m\n") + "", "", ""}, // placeholder replaced below

	// Branches, tags, names: shell and newlines.
	{"branch $()", apiWith("branch: \"$(reboot)\"\napp_path: /srv/api\n"), prod + ".branch", "shell metacharacter"},
	{"branch backticks", apiWith("branch: \"`id`\"\napp_path: /srv/api\n"), prod + ".branch", "shell metacharacter"},
	{"branch ;", apiWith("branch: \"main;reboot\"\napp_path: /srv/api\n"), prod + ".branch", "shell metacharacter"},
	{"branch newline", apiWith("branch: \"main\\nx\"\napp_path: /srv/api\n"), prod + ".branch", "control characters"},
	{"tags |", apiWith(base + "tags: \"v*|x\"\n"), prod + ".tags", "shell metacharacter"},
	{"database name ;", apiWith(base + "database: {tool: alembic, name: \"x; DROP DATABASE y\"}\n"), prod + ".database.name", "not a valid name"},
	{"fraise name with a slash", strings.Replace(apiWith(base), "  api:", "  \"../api\":", 1), "fraises.../api", "not a valid name"},
	{"environment name $()", strings.Replace(apiWith(base), "production:", "\"$(id)\":", 1), "fraises.api.environments.$(id)", "not a valid name"},
	{"job name with a space", scheduledWith(base + "jobs:\n  - {name: \"a b\", schedule: \"@daily\", command: [a]}\n"), "fraises.cron.environments.production.jobs[0].name", "not a valid name"},
	{"job description with a unit line", jobWith("description: \"x\\nExecStartPre=/bin/sh -c evil\"\n"), "fraises.cron.environments.production.jobs[0].description", "control characters"},
	{"on_calendar with a unit line", scheduledWith(base + "jobs:\n  - {name: a, on_calendar: \"daily\\nExecStartPre=/bin/sh\", command: [a]}\n"), "fraises.cron.environments.production.jobs[0].on_calendar", "control characters"},
	{"health url with a newline", apiWith(base + "health_check: {url: \"http://127.0.0.1/\\nx\"}\n"), prod + ".health_check.url", "not a URL"},
}

func init() {
	for i, c := range hostileConfigs {
		if c.name == "job argv with NUL" {
			hostileConfigs[i] = hostileCase{c.name, scheduledWith(base + "jobs:\n  - {name: a, schedule: \"@daily\", command: [bin/a, \"\\0\"]}\n"),
				"fraises.cron.environments.production.jobs[0].command[1]", "NUL"}
		}
	}
}

// wantRefused checks that the configuration is refused with a problem at
// path whose message holds says.
func wantRefused(t *testing.T, yaml, path, says string) {
	t.Helper()
	_, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("accepted (error %v); input:\n%s", err, yaml)
	}
	for _, p := range cerr.Problems {
		if p.Path == path && strings.Contains(p.Message, says) {
			return
		}
	}
	t.Errorf("no problem at %s saying %q:\n%v", path, says, err)
}

// TestHostileConfig: every attack is refused, at the key it is written
// at, with a message that says what is wrong.
func TestHostileConfig(t *testing.T) {
	for _, tc := range hostileConfigs {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, tc.yaml, tc.path, tc.says)
		})
	}
}

// TestHostileConfigSymlink: app_paths that escape through symlinks, as far
// as the directories exist when the configuration is loaded: one
// directory under two names, one nested in another through a link, a link
// to the root or into a system directory. Each is refused with what it
// resolves to. Directories that do not exist yet resolve as far as they
// do.
func TestHostileConfigSymlink(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"real/api", "real/web"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"alias":    filepath.Join(root, "real"),
		"api-link": filepath.Join(root, "real", "api"),
		"etc-link": "/etc",
		"slash":    "/",
		"usr-link": "/usr/share",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	at := func(p string) string { return filepath.Join(root, p) }
	other := func(appPath string) string {
		return "  other:\n    type: api\n    repository: https://github.com/acme/other.git\n    environments:\n      production: {branch: main, app_path: " + appPath + "}\n"
	}
	const otherPath = "fraises.other.environments.production.app_path"
	const apiPath = "fraises.api.environments.production.app_path"
	for _, tc := range []struct {
		name, yaml, path, says string
	}{
		{"one directory, two names", apiWith("branch: main\napp_path: "+at("real/api")+"\n") + other(at("alias/api")),
			otherPath, "under another name: through symlinks both are " + at("real/api")},
		{"nested through a link", apiWith("branch: main\napp_path: "+at("real/api")+"\n") + other(at("api-link/sub")),
			otherPath, "leads through a symlink to " + at("real/api/sub") + ", inside api/production's app_path"},
		{"containing through a link", apiWith("branch: main\napp_path: "+at("real/api/deep")+"\n") + other(at("api-link")),
			otherPath, "which contains api/production's app_path"},
		{"a link to /etc", apiWith("branch: main\napp_path: " + at("etc-link/api") + "\n"),
			apiPath, "leads through a symlink to /etc/api, which is inside /etc, a system directory"},
		{"a link to the root", apiWith("branch: main\napp_path: " + at("slash") + "\n"),
			apiPath, "leads through a symlink to /, which is the root directory"},
		{"a link into /usr", apiWith("branch: main\napp_path: " + at("usr-link/api") + "\n"),
			apiPath, "inside /usr, a system directory"},
		{"/etc as written", apiWith("branch: main\napp_path: /etc/api\n"), apiPath, "app_path /etc/api is inside /etc, a system directory"},
		{"the root as written", apiWith("branch: main\napp_path: /\n"), apiPath, "app_path / is the root directory"},
		{"lexically the same", apiWith("branch: main\napp_path: "+at("real/api")+"\n") + other(at("real/api")+"/."),
			otherPath, "is also the app_path of api/production"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, tc.yaml, tc.path, tc.says)
		})
	}
	// Accepted: a link to a directory of one's own, paths not made yet
	// below a link, /usr/local.
	for _, yaml := range []string{
		apiWith("branch: main\napp_path: "+at("api-link")+"\n") + other(at("real/web")),
		apiWith("branch: main\napp_path: "+at("alias/api/not/yet")+"\n") + other(at("alias/web/nor/this")),
		apiWith("branch: main\napp_path: /usr/local/api\n"),
	} {
		if _, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles}); err != nil {
			t.Errorf("refused: %v\ninput:\n%s", err, yaml)
		}
	}
}
