package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes through every pass. Whatever the input,
// Parse must not panic, and it returns either a configuration or an *Error
// whose problems all have a message. A configuration it accepts holds
// nothing the hostile table (hostile_test.go, also the seed corpus)
// refuses: see checkAccepted.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../../examples/fraises.yaml", "../../examples/invalid.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range ruleCases {
		f.Add([]byte(tc.yaml))
	}
	for _, tc := range hostileConfigs {
		f.Add([]byte(tc.yaml))
	}
	env := mapEnv(map[string]string{"HOME": "/root", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, Options{LookupEnv: env, ReadFile: noFiles})
		if err == nil {
			if cfg == nil {
				t.Fatal("no configuration and no error")
			}
			_ = cfg.Summary()
			checkAccepted(t, cfg)
			return
		}
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("error is not *Error: %v", err)
		}
		for _, p := range cerr.Problems {
			if p.Message == "" {
				t.Fatalf("problem without a message: %+v", p)
			}
		}
	})
}

// checkAccepted checks what an accepted configuration guarantees to the
// code that turns it into paths, argv and unit files.
func checkAccepted(t *testing.T, cfg *Config) {
	t.Helper()
	ctl := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
	}
	for _, fname := range cfg.FraiseNames() {
		if nameProblem(fname) != "" {
			t.Fatalf("fraise name %q accepted", fname)
		}
		fr := cfg.Fraises[fname]
		for _, ename := range fr.EnvironmentNames() {
			e := fr.Environments[ename]
			if nameProblem(ename) != "" {
				t.Fatalf("environment name %q accepted", ename)
			}
			if e.AppPath != "" && (!filepath.IsAbs(e.AppPath) || filepath.Clean(e.AppPath) != e.AppPath || ctl(e.AppPath)) {
				t.Fatalf("app_path %q accepted", e.AppPath)
			}
			if e.GitRepo != "" && (ctl(e.GitRepo) || remoteHazard(e.GitRepo) != "") {
				t.Fatalf("git_repo %q accepted", e.GitRepo)
			}
			if strings.ContainsAny(e.Branch, shellMeta) || ctl(e.Branch) {
				t.Fatalf("branch %q accepted", e.Branch)
			}
			for _, u := range e.SystemdService {
				if n, msg, _ := unitName(u, "service"); msg != "" || n != u {
					t.Fatalf("unit %q accepted", u)
				}
			}
			for _, s := range append(append([]string{}, e.Shared...), e.Scripts...) {
				if !filepath.IsLocal(s) || ctl(s) {
					t.Fatalf("release path %q accepted", s)
				}
			}
			if e.Install != nil {
				for _, a := range e.Install.Argv {
					if strings.IndexByte(a, 0) >= 0 {
						t.Fatalf("argv %q accepted", e.Install.Argv)
					}
				}
			}
			for _, j := range e.Jobs {
				if ctl(j.Description) || ctl(j.OnCalendar) {
					t.Fatalf("job %q: description or calendar with control characters accepted", j.Name)
				}
			}
		}
	}
}
