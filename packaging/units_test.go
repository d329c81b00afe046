package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// maxExposure is the highest `systemd-analyze security` exposure
// fraisier.service may have (0 is best, 10 worst). The unit scores 1.5;
// what keeps it from lower is listed at the end of its [Service] section.
const maxExposure = 1.5

const (
	serviceFile = "systemd/fraisier.service"
	socketFile  = "systemd/fraisier.socket"
	sysusers    = "sysusers.d/fraisier.conf"
	tmpfiles    = "tmpfiles.d/fraisier.conf"
)

// tool is the path of a systemd program, or the test ends as unavailable.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Unavailable(t, "%s not found: %v", name, err)
	}
	return p
}

// run runs argv and returns its exit code and everything it wrote.
func run(t *testing.T, argv ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	// systemd-analyze pages and colours for a terminal only, but say so.
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0")
	st := testenv.Run(t, cmd, time.Minute)
	return st.ExitCode(), out.String()
}

// directives returns the values of key in section of a unit file, in order.
func directives(t *testing.T, file, section, key string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	in := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			in = strings.Trim(line, "[]")
		case in == section:
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
				vals = append(vals, strings.TrimSpace(v))
			}
		}
	}
	return vals
}

// TestUnitsVerify: systemd-analyze verify finds nothing to say about the
// units, with ExecStart's /usr/bin/fraisier replaced by a fraisier built
// from this tree (verify checks that the program exists). Any line it
// prints fails the test: an unknown or misspelt key is only a warning.
func TestUnitsVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	bin := testenv.BuildFraisier(t)
	dir := t.TempDir()
	for _, f := range []string{serviceFile, socketFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/bin/fraisier "), []byte(bin+" "))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out := run(t, analyze, "verify", "--man=no",
		filepath.Join(dir, "fraisier.socket"), filepath.Join(dir, "fraisier.service"))
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: exit %d\n%s", code, out)
	}
}

// TestServiceExposure: systemd-analyze security rates fraisier.service at
// most maxExposure.
func TestServiceExposure(t *testing.T) {
	checkExposure(t, serviceFile, maxExposure)
}

// checkExposure fails the test when systemd-analyze security rates the
// unit in file above max.
func checkExposure(t *testing.T, file string, max float64) {
	t.Helper()
	unit := filepath.Base(file)
	analyze := tool(t, "systemd-analyze")
	code, out := run(t, analyze, "security", "--offline=yes", "--no-pager", file)
	m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unit) + `: ([0-9]+\.[0-9]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security (exit %d) gave no overall exposure level:\n%s", code, out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: %s exposure %.1f (threshold %.1f)", unit, score, max)
	if score > max {
		t.Errorf("%s exposure %.1f, above %.1f:\n%s", unit, score, max, out)
	}
}

// TestServiceSettings holds the settings the rest of the package and the
// documentation rely on, which verify and security would not miss.
func TestServiceSettings(t *testing.T) {
	want := map[string][]string{
		"Type":                    {"notify"}, // serve sends READY=1 and STOPPING=1
		"ExecStart":               {"/usr/bin/fraisier serve --listen systemd"},
		"ExecReload":              {"/bin/kill -HUP $MAINPID"},
		"User":                    {"fraisier"},
		"StateDirectory":          {"fraisier"},
		"LoadCredential":          {"fraisier:/etc/fraisier/credentials"},
		"NoNewPrivileges":         {"yes"},
		"CapabilityBoundingSet":   {""},
		"ProtectSystem":           {"strict"},
		"ProtectHome":             {"yes"},
		"PrivateTmp":              {"yes"},
		"RestrictAddressFamilies": {"AF_UNIX AF_INET AF_INET6"},
		"SystemCallFilter":        {"@system-service"},
		"SystemCallArchitectures": {"native"},
	}
	for key, vals := range want {
		if got := directives(t, serviceFile, "Service", key); !slices.Equal(got, vals) {
			t.Errorf("%s: %s=%q, want %q", serviceFile, key, got, vals)
		}
	}
	if got := directives(t, serviceFile, "Unit", "Requires"); !slices.Contains(got, "fraisier.socket") {
		t.Errorf("%s: Requires=%q, want fraisier.socket: --listen systemd needs the socket", serviceFile, got)
	}
	// serve takes exactly one socket (server.Listen refuses more).
	var listens []string
	for _, k := range []string{"ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO"} {
		listens = append(listens, directives(t, socketFile, "Socket", k)...)
	}
	if len(listens) != 1 {
		t.Errorf("%s listens on %q; serve takes one socket", socketFile, listens)
	}
}

// TestServiceStatePath: with no state: in fraises.yaml, serve running as
// the unit's user (not root) opens the database inside the unit's
// StateDirectory, the same file root's fraisier commands open by default.
func TestServiceStatePath(t *testing.T) {
	env := map[string]string{}
	for _, kv := range directives(t, serviceFile, "Service", "Environment") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	dirs := directives(t, serviceFile, "Service", "StateDirectory")
	if len(dirs) != 1 {
		t.Fatalf("StateDirectory=%q, want one", dirs)
	}
	want := filepath.Join("/var/lib", dirs[0], "fraisier.db")
	if got := store.DefaultPath(999, lookup); got != want {
		t.Errorf("serve as fraisier opens %q, want %q (in StateDirectory)", got, want)
	}
	if got := store.DefaultPath(0, lookup); got != want {
		t.Errorf("root's fraisier opens %q, serve %q", got, want)
	}
	if got := env["FRAISIER_CONFIG"]; got != "/etc/fraisier/fraises.yaml" {
		t.Errorf("FRAISIER_CONFIG=%q, want /etc/fraisier/fraises.yaml", got)
	}
}

// TestCredentialsReachTheConfig: a secret file put in the credentials
// directory reaches serve as fraisier_<name> ($CREDENTIALS_DIRECTORY), and
// fraises.yaml's secret_file: fraisier_<name> reads it: config validate
// with the real binary accepts the file, and refuses it without the prefix.
func TestCredentialsReachTheConfig(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	id, dir, ok := strings.Cut(directives(t, serviceFile, "Service", "LoadCredential")[0], ":")
	if !ok || dir != "/etc/fraisier/credentials" {
		t.Fatalf("LoadCredential=%s:%s, want a directory", id, dir)
	}
	root := t.TempDir()
	creds := filepath.Join(root, "credentials")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	// systemd names each file of the directory <id>_<file name>.
	if err := os.WriteFile(filepath.Join(creds, id+"_github"), []byte("s3cret-"+testenv.RandomHex(8)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	validate := func(name string) (int, string) {
		cfg := filepath.Join(root, "fraises.yaml")
		yaml := "git:\n  github: {secret_file: " + name + "}\n" +
			"fraises:\n  hello:\n    type: api\n    repository: acme/hello\n    environments:\n" +
			"      production:\n        branch: main\n        git_repo: " + filepath.Join(root, "origin.git") +
			"\n        app_path: " + filepath.Join(root, "srv", "hello") + "\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "config", "validate", cfg)
		cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+creds, "HOME="+root)
		cmd.Stdout, cmd.Stderr = &out, &out
		return testenv.Run(t, cmd, time.Minute).ExitCode(), out.String()
	}
	if code, out := validate(id + "_github"); code != 0 {
		t.Errorf("secret_file: %s_github: config validate exit %d\n%s", id, code, out)
	}
	if code, out := validate("github"); code == 0 {
		t.Errorf("secret_file: github (no %s_ prefix) validated, want refused\n%s", id, out)
	}
}

// TestSysusersCreatesTheUser: systemd-sysusers, on an empty root, makes
// the fraisier system user and group with the state directory as home.
func TestSysusersCreatesTheUser(t *testing.T) {
	sysusersBin := tool(t, "systemd-sysusers")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := filepath.Abs(sysusers)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, sysusersBin, "--root="+root, conf); code != 0 {
		t.Fatalf("systemd-sysusers: exit %d\n%s", code, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Split(strings.TrimSpace(string(passwd)), ":")
	if len(fields) != 7 || fields[0] != "fraisier" || fields[5] != "/var/lib/fraisier" {
		t.Fatalf("/etc/passwd: %q, want the user fraisier with home /var/lib/fraisier", passwd)
	}
	if uid, err := strconv.Atoi(fields[2]); err != nil || uid == 0 || uid >= 1000 {
		t.Errorf("fraisier's uid %s, want a system uid", fields[2])
	}
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil || !strings.HasPrefix(string(group), "fraisier:x:"+fields[3]+":") {
		t.Errorf("/etc/group: %q (%v), want the group fraisier with gid %s", group, err, fields[3])
	}
}

// TestTmpfilesCreatesCredentialsDir: systemd-tmpfiles, after
// systemd-sysusers (the order postinst runs them), makes the directory
// LoadCredential= reads (a missing one would stop the unit from starting),
// written by root and read by the fraisier group, and the state directory,
// fraisier's.
func TestTmpfilesCreatesCredentialsDir(t *testing.T) {
	tmpfilesBin, sysusersBin := tool(t, "systemd-tmpfiles"), tool(t, "systemd-sysusers")
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "systemd-tmpfiles makes root's directories as root only")
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{sysusersBin, sysusers}, {tmpfilesBin, tmpfiles, "--create"}} {
		conf, err := filepath.Abs(c[1])
		if err != nil {
			t.Fatal(err)
		}
		if code, out := run(t, append([]string{c[0], "--root=" + root, conf}, c[2:]...)...); code != 0 {
			t.Fatalf("%s: exit %d\n%s", filepath.Base(c[0]), code, out)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(string(passwd)), ":")
	uid, _ := strconv.Atoi(f[2])
	gid, _ := strconv.Atoi(f[3])
	_, creds, _ := strings.Cut(directives(t, serviceFile, "Service", "LoadCredential")[0], ":")
	for _, want := range []struct {
		dir      string
		uid, gid int
	}{{creds, 0, gid}, {"/var/lib/fraisier", uid, gid}} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, want.dir), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Mode&0o7777 != 0o750 || int(st.Uid) != want.uid || int(st.Gid) != want.gid {
			t.Errorf("%s: mode %o owner %d:%d, want a directory 750 %d:%d", want.dir, st.Mode, st.Uid, st.Gid, want.uid, want.gid)
		}
	}
}
