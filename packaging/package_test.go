package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The package is built once per test binary, by BuildDeb (make package),
// into a directory TestMain removes. On a machine that has never built it,
// nfpm's first build (tools/go.mod) takes about 90 s on its own.
var (
	debOnce sync.Once
	debDir  string
	debPath string
	debErr  error
	debTook time.Duration
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

// builtDeb returns the path of the package make package built from this
// tree.
func builtDeb(t *testing.T) string {
	t.Helper()
	tool(t, "make")
	tool(t, "dpkg-deb")
	debOnce.Do(func() {
		debDir, debErr = os.MkdirTemp("", "fraisier-deb-")
		if debErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		start := time.Now()
		debPath, debErr = BuildDeb(ctx, "..", filepath.Join(debDir, "dist"))
		debTook = time.Since(start)
	})
	if debErr != nil {
		t.Fatalf("build the package: %v", debErr)
	}
	t.Logf("make package: %s in %s", filepath.Base(debPath), debTook.Round(100*time.Millisecond))
	return debPath
}

// extracted unpacks the package's files into a new directory.
func extracted(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	if code, out := run(t, tool(t, "dpkg-deb"), "-x", deb, dir); code != 0 {
		t.Fatalf("dpkg-deb -x: exit %d\n%s", code, out)
	}
	return dir
}

// manPages lists the man page of every command of the tree, as
// /usr/share/man/man1/fraisier-config-validate.1.gz for `fraisier config validate`.
func manPages() []string {
	root := cli.RootCommand(cli.Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard},
		cli.Env{Lookup: func(string) (string, bool) { return "", false }})
	var pages []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return
		}
		pages = append(pages, "/usr/share/man/man1/"+strings.ReplaceAll(c.CommandPath(), " ", "-")+".1.gz")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return pages
}

// wantFiles is every file the package installs, with its mode.
func wantFiles() map[string]string {
	want := map[string]string{
		"/usr/bin/fraisier":                                  "-rwxr-xr-x",
		"/usr/lib/systemd/system/fraisier.service":           "-rw-r--r--",
		"/usr/lib/systemd/system/fraisier.socket":            "-rw-r--r--",
		"/usr/lib/systemd/system/fraisier-polkit.path":       "-rw-r--r--",
		"/usr/lib/systemd/system/fraisier-polkit.service":    "-rw-r--r--",
		"/usr/lib/sysusers.d/fraisier.conf":                  "-rw-r--r--",
		"/usr/lib/tmpfiles.d/fraisier.conf":                  "-rw-r--r--",
		"/etc/fraisier/fraises.yaml":                         "-rw-r--r--",
		"/usr/share/bash-completion/completions/fraisier":    "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_fraisier":        "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/fraisier.fish": "-rw-r--r--",
		"/usr/share/doc/fraisier/copyright":                  "-rw-r--r--",
		"/usr/share/doc/fraisier/README.md":                  "-rw-r--r--",
		"/usr/share/doc/fraisier/changelog.gz":               "-rw-r--r--",
		"/usr/share/lintian/overrides/fraisier":              "-rw-r--r--",
		"/usr/share/doc/fraisier/examples/fraises.yaml":      "-rw-r--r--",
	}
	for _, p := range manPages() {
		want[p] = "-rw-r--r--"
	}
	return want
}

// TestPackageContents: dpkg-deb --contents lists every file the package
// must install with its mode, nothing else, all owned by root.
func TestPackageContents(t *testing.T) {
	deb := builtDeb(t)
	code, out := run(t, tool(t, "dpkg-deb"), "--contents", deb)
	if code != 0 {
		t.Fatalf("dpkg-deb --contents: exit %d\n%s", code, out)
	}
	want := wantFiles()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Errorf("unexpected entry (a link, or a name with a space?): %q", line)
			continue
		}
		mode, owner, path := f[0], f[1], strings.TrimPrefix(f[5], ".")
		if owner != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", path, owner)
		}
		if mode[0] == 'd' {
			if mode != "drwxr-xr-x" {
				t.Errorf("directory %s: mode %s, want drwxr-xr-x", path, mode)
			}
			continue
		}
		got[path] = mode
	}
	for path, mode := range want {
		if got[path] != mode {
			t.Errorf("%s: mode %q in the package, want %q", path, got[path], mode)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("the package installs %s, which nothing expects", path)
		}
	}
}

// TestPackageControl: the control fields, the conffiles and the maintainer
// scripts, as dpkg-deb reads them.
func TestPackageControl(t *testing.T) {
	deb := builtDeb(t)
	dpkgDeb := tool(t, "dpkg-deb")
	field := func(name string) string {
		code, out := run(t, dpkgDeb, "--field", deb, name)
		if code != 0 {
			t.Fatalf("dpkg-deb --field %s: exit %d\n%s", name, code, out)
		}
		return strings.TrimSpace(out)
	}
	if got := field("Package"); got != "fraisier" {
		t.Errorf("Package: %q, want fraisier", got)
	}
	version := field("Version")
	if code, out := run(t, tool(t, "dpkg"), "--validate-version", version); code != 0 {
		t.Errorf("Version %q is not a Debian version: %s", version, out)
	}
	if !strings.HasPrefix(filepath.Base(deb), "fraisier_"+version+"_") {
		t.Errorf("package file %s does not carry version %s", filepath.Base(deb), version)
	}
	goarch, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Debian names Go's amd64 and arm64 the same; the others differ.
	if arch, want := field("Architecture"), strings.TrimSpace(string(goarch)); (want == "amd64" || want == "arm64") && arch != want {
		t.Errorf("Architecture: %q, want %q", arch, want)
	}
	depends := strings.Split(field("Depends"), ", ")
	for _, d := range []string{"git", "procps", "systemd-sysusers", "systemd-tmpfiles"} {
		if !slices.Contains(depends, d) {
			t.Errorf("Depends: %q, want %s among them", depends, d)
		}
	}
	for _, f := range []string{"Maintainer", "Description", "Section"} {
		if field(f) == "" {
			t.Errorf("%s: empty", f)
		}
	}

	control := t.TempDir()
	if code, out := run(t, dpkgDeb, "--control", deb, control); code != 0 {
		t.Fatalf("dpkg-deb --control: exit %d\n%s", code, out)
	}
	conffiles, err := os.ReadFile(filepath.Join(control, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(conffiles)); !slices.Equal(got, []string{"/etc/fraisier/fraises.yaml"}) {
		t.Errorf("conffiles: %q, want /etc/fraisier/fraises.yaml only", got)
	}
	sh := tool(t, "sh")
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(control, script)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("maintainer script %s: %v", script, err)
			continue
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", script, fi.Mode().Perm())
		}
		if code, out := run(t, sh, "-n", p); code != 0 {
			t.Errorf("sh -n %s: exit %d\n%s", script, code, out)
		}
		data, _ := os.ReadFile(p)
		if !bytes.HasPrefix(data, []byte("#!/bin/sh\n")) || !bytes.Contains(data, []byte("\nset -e\n")) {
			t.Errorf("%s: want #!/bin/sh and set -e", script)
		}
	}
}

// TestPackageDocs: every man page is gzip that man renders, the
// completions are scripts each shell would load, and the binary in the
// package completes its commands.
func TestPackageDocs(t *testing.T) {
	dir := extracted(t, builtDeb(t))
	manProg, manErr := exec.LookPath("man")
	if manErr != nil {
		t.Logf("man not installed: the pages are checked as gzip and roff only")
	}
	for _, page := range manPages() {
		data := gunzip(t, filepath.Join(dir, page))
		if !bytes.Contains(data, []byte(".TH \"FRAISIER")) || !bytes.Contains(data, []byte(".SH SYNOPSIS")) {
			t.Errorf("%s is not a man page:\n%.300s", page, data)
			continue
		}
		if manErr == nil {
			cmd := exec.Command(manProg, "-l", filepath.Join(dir, page))
			cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if st := testenv.Run(t, cmd, time.Minute); st.ExitCode() != 0 || !strings.Contains(out.String(), "SYNOPSIS") {
				t.Errorf("man -l %s: exit %d\n%s", page, st.ExitCode(), out.String())
			}
		}
	}

	bashScript := filepath.Join(dir, "usr/share/bash-completion/completions/fraisier")
	if code, out := run(t, tool(t, "bash"), "-n", bashScript); code != 0 {
		t.Errorf("bash -n %s: exit %d\n%s", bashScript, code, out)
	}
	for _, f := range []string{"usr/share/bash-completion/completions/fraisier", "usr/share/zsh/vendor-completions/_fraisier", "usr/share/fish/vendor_completions.d/fraisier.fish"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Error(err)
			continue
		}
		// Each script asks the binary for the words at run time.
		if !bytes.Contains(data, []byte("__complete")) {
			t.Errorf("%s does not call fraisier __complete:\n%.300s", f, data)
		}
	}
	code, out := run(t, filepath.Join(dir, "usr/bin/fraisier"), "__complete", "con")
	if code != 0 || !strings.Contains(out, "config\t") {
		t.Errorf("fraisier __complete con: exit %d, want config among the words:\n%s", code, out)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

// TestPackageCopyright: the copyright file is machine-readable (DEP-5) and
// has a Files paragraph for every module compiled into the packaged
// binary, each with a License paragraph's text.
func TestPackageCopyright(t *testing.T) {
	dir := extracted(t, builtDeb(t))
	data, err := os.ReadFile(filepath.Join(dir, "usr/share/doc/fraisier/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	paragraphs := strings.Split(string(data), "\n\n")
	if !strings.HasPrefix(paragraphs[0], "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Fatalf("copyright does not start with the DEP-5 Format field:\n%.200s", data)
	}
	files := map[string]string{} // Files pattern → License
	texts := map[string]bool{}   // licences given in full
	for _, p := range paragraphs[1:] {
		fields := map[string]string{}
		for _, line := range strings.Split(p, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				fields[k] = v
			}
		}
		switch {
		case fields["Files"] != "":
			if fields["Copyright"] == "" || fields["License"] == "" {
				t.Errorf("Files: %s lacks Copyright or License", fields["Files"])
			}
			files[fields["Files"]] = fields["License"]
		case fields["License"] != "":
			texts[fields["License"]] = true
		}
	}
	info, err := buildinfo.ReadFile(filepath.Join(dir, "usr/bin/fraisier"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range info.Deps {
		lic, ok := files[dep.Path+"/*"]
		if !ok {
			t.Errorf("copyright has no Files: %s/* paragraph (the binary contains %s %s)", dep.Path, dep.Path, dep.Version)
			continue
		}
		if !texts[lic] {
			t.Errorf("%s: License %s has no paragraph with its text", dep.Path, lic)
		}
	}
	if len(info.Deps) == 0 {
		t.Error("the packaged binary lists no modules: was it built with -buildvcs and module info?")
	}
}

// TestPackageConffile: the shipped fraises.yaml is valid YAML whose only
// problem, for the packaged binary, is the fraises section it leaves to
// the user; with its commented example filled in, it validates, state
// section included.
func TestPackageConffile(t *testing.T) {
	dir := extracted(t, builtDeb(t))
	bin := filepath.Join(dir, "usr/bin/fraisier")
	shipped, err := os.ReadFile(filepath.Join(dir, "etc/fraisier/fraises.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	validate := func(content string) (int, string) {
		cfg := filepath.Join(t.TempDir(), "fraises.yaml")
		if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return run(t, bin, "config", "validate", cfg)
	}
	code, out := validate(string(shipped))
	if code != 3 || !strings.Contains(out, "fraises: required key missing") || !strings.Contains(out, "1 problem") {
		t.Errorf("config validate on the shipped file: exit %d, want 3 and only the missing fraises section:\n%s", code, out)
	}
	head, example, ok := strings.Cut(string(shipped), "\n# fraises:\n")
	if !ok {
		t.Fatal("the shipped file has no commented fraises: section")
	}
	filled := head + "\nfraises:\n"
	for _, line := range strings.Split(strings.TrimRight(example, "\n"), "\n") {
		filled += strings.TrimPrefix(line, "# ") + "\n"
	}
	if code, out := validate(filled); code != 0 {
		t.Errorf("config validate on the shipped file with its example: exit %d\n%s\n%s", code, out, filled)
	}
	if !strings.Contains(head, "\nstate:\n  path: /var/lib/fraisier/fraisier.db\n") {
		t.Errorf("the shipped file does not set state.path to the unit's state database")
	}
}

// TestMaintainerScriptsParse: each script parses as POSIX sh (dash, when
// it is sh), without building the package.
func TestMaintainerScriptsParse(t *testing.T) {
	sh := tool(t, "sh")
	for _, s := range []string{"debian/postinst", "debian/prerm", "debian/postrm", "debian/version.sh"} {
		if code, out := run(t, sh, "-n", s); code != 0 {
			t.Errorf("sh -n %s: exit %d\n%s", s, code, out)
		}
	}
}
