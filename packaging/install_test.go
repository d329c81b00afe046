package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// dpkgRoot is an empty root dpkg installs into: its database, and the
// directories the maintainer scripts' tools expect.
func dpkgRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// dpkgIn runs dpkg on root. The maintainer scripts run outside a chroot
// (root has no /bin/sh) with DPKG_ROOT set to root, which they honour:
// every path they touch is under it, and they leave the running systemd
// alone. The dependencies (git, systemd's tools) are the host's.
func dpkgIn(t *testing.T, root string, args ...string) string {
	t.Helper()
	argv := append([]string{tool(t, "dpkg"), "--root=" + root, "--force-script-chrootless", "--force-depends"}, args...)
	code, out := run(t, argv...)
	if code != 0 {
		t.Fatalf("dpkg %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestPackageInstallRemovePurge installs the package into an empty root
// with dpkg, installs it again (an upgrade: postinst configure with the
// old version), removes it and purges it: the user and the credentials
// directory are made; removal keeps the edited conffile, the state and the
// secrets and drops the polkit rule; purge removes the state, /etc/fraisier
// and the enablement links, and keeps the user.
func TestPackageInstallRemovePurge(t *testing.T) {
	deb := builtDeb(t)
	tool(t, "systemd-sysusers")
	tool(t, "systemd-tmpfiles")
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "dpkg installs files owned by root as root only")
	}
	root := dpkgRoot(t)
	at := func(p string) string { return filepath.Join(root, p) }

	dpkgIn(t, root, "--install", deb)
	for path := range wantFiles() {
		if !exists(t, at(path)) {
			t.Errorf("after install: %s missing", path)
		}
	}
	passwd, err := os.ReadFile(at("etc/passwd"))
	if err != nil || !regexp.MustCompile(`(?m)^fraisier:x:[0-9]+:[0-9]+:[^:]*:/var/lib/fraisier:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("after install: /etc/passwd %q (%v), want the fraisier system user", passwd, err)
	}
	for _, dir := range []string{"etc/fraisier/credentials", "var/lib/fraisier"} {
		if fi, err := os.Stat(at(dir)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Errorf("after install: /%s: %v %v, want a directory of mode 0750", dir, fi, err)
		}
	}
	if code, out := run(t, at("usr/bin/fraisier"), "version"); code != 0 {
		t.Errorf("the installed fraisier version: exit %d\n%s", code, out)
	}

	// What the administrator and fraisier make after installation.
	edited := "\n# edited by the administrator\n"
	appendFile(t, at("etc/fraisier/fraises.yaml"), edited)
	for _, f := range []string{"etc/fraisier/credentials/github", "var/lib/fraisier/fraisier.db", "etc/polkit-1/rules.d/50-fraisier.rules"} {
		writeFile(t, at(f), "x\n")
	}
	link := at("etc/systemd/system/sockets.target.wants/fraisier.socket")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/systemd/system/fraisier.socket", link); err != nil {
		t.Fatal(err)
	}

	dpkgIn(t, root, "--install", deb)
	if data, _ := os.ReadFile(at("etc/fraisier/fraises.yaml")); !strings.HasSuffix(string(data), edited) {
		t.Errorf("after reinstall: the edited conffile was replaced")
	}

	dpkgIn(t, root, "--remove", "fraisier")
	for _, gone := range []string{"usr/bin/fraisier", "usr/lib/systemd/system/fraisier.service", "etc/polkit-1/rules.d/50-fraisier.rules"} {
		if exists(t, at(gone)) {
			t.Errorf("after remove: %s is still there", gone)
		}
	}
	for _, kept := range []string{"etc/fraisier/fraises.yaml", "etc/fraisier/credentials/github", "var/lib/fraisier/fraisier.db"} {
		if !exists(t, at(kept)) {
			t.Errorf("after remove: %s is gone; Debian keeps configuration and state until purge", kept)
		}
	}
	if data, _ := os.ReadFile(at("etc/fraisier/fraises.yaml")); !strings.HasSuffix(string(data), edited) {
		t.Errorf("after remove: the edited conffile was changed")
	}

	dpkgIn(t, root, "--purge", "fraisier")
	for _, gone := range []string{"etc/fraisier", "var/lib/fraisier", "etc/systemd/system/sockets.target.wants/fraisier.socket"} {
		if exists(t, at(gone)) {
			t.Errorf("after purge: %s is still there", gone)
		}
	}
	if passwd, _ := os.ReadFile(at("etc/passwd")); !strings.Contains(string(passwd), "\nfraisier:") && !strings.HasPrefix(string(passwd), "fraisier:") {
		t.Errorf("after purge: the fraisier user is gone (Debian keeps system users): %q", passwd)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// TestDebianVersion: version.sh names a commit with a Debian version that
// sorts builds in order: before the first tag, on a tag, after it, and a
// pre-release before its release.
func TestDebianVersion(t *testing.T) {
	script, err := filepath.Abs("debian/version.sh")
	if err != nil {
		t.Fatal(err)
	}
	dpkg := tool(t, "dpkg")
	repo := t.TempDir()
	testenv.Git(t, repo, "init", "-q", "-b", "main")
	commit := func(msg string) {
		writeFile(t, filepath.Join(repo, "f"), msg)
		testenv.Git(t, repo, "add", "f")
		testenv.Git(t, repo, "commit", "-q", "-m", msg)
	}
	version := func() string {
		t.Helper()
		var out strings.Builder
		cmd := exec.Command(script)
		cmd.Dir, cmd.Env = repo, testenv.GitEnv()
		cmd.Stdout, cmd.Stderr = &out, &out
		if st := testenv.Run(t, cmd, time.Minute); st.ExitCode() != 0 {
			t.Fatalf("version.sh: exit %d\n%s", st.ExitCode(), out.String())
		}
		v := strings.TrimSpace(out.String())
		if code, msg := run(t, dpkg, "--validate-version", v); code != 0 {
			t.Errorf("%q is not a Debian version: %s", v, msg)
		}
		return v
	}
	sha := func() string { return testenv.Git(t, repo, "rev-parse", "--short=12", "HEAD") }

	commit("one")
	var seen []string
	v := version()
	if !regexp.MustCompile(`^0\.0~git[0-9]{14}\.` + sha() + `$`).MatchString(v) {
		t.Errorf("before any tag: %q, want 0.0~git<time>.%s", v, sha())
	}
	seen = append(seen, v)
	testenv.Git(t, repo, "tag", "v1.2.0-rc1")
	if v := version(); v != "1.2.0~rc1" {
		t.Errorf("on v1.2.0-rc1: %q, want 1.2.0~rc1", v)
	}
	seen = append(seen, version())
	commit("two")
	seen = append(seen, version())
	testenv.Git(t, repo, "tag", "v1.2.0")
	if v := version(); v != "1.2.0" {
		t.Errorf("on v1.2.0: %q, want 1.2.0", v)
	}
	seen = append(seen, version())
	commit("three")
	if v := version(); !regexp.MustCompile(`^1\.2\.0\+git[0-9]{14}\.` + sha() + `$`).MatchString(v) {
		t.Errorf("after v1.2.0: %q, want 1.2.0+git<time>.%s", v, sha())
	}
	seen = append(seen, version())
	writeFile(t, filepath.Join(repo, "f"), "uncommitted")
	if v := version(); !strings.HasSuffix(v, ".dirty") {
		t.Errorf("with uncommitted changes: %q, want a .dirty suffix", v)
	}
	seen = append(seen, version())
	for i := 1; i < len(seen); i++ {
		if code, _ := run(t, dpkg, "--compare-versions", seen[i-1], "lt", seen[i]); code != 0 {
			t.Errorf("Debian sorts %q after %q, want before", seen[i-1], seen[i])
		}
	}
}
