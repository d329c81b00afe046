package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	system := filepath.Join(dir, "etc", "fraises.yaml")
	flagFile := filepath.Join(dir, "flag.yaml")
	envFile := filepath.Join(dir, "env.yaml")
	local := filepath.Join(dir, "work", "fraises.yaml")
	for _, p := range []string{system, flagFile, envFile, local} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("fraises: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		cwd     string
		flag    string
		env     map[string]string
		system  string
		want    string
		wantErr []string // substrings of the error
	}{
		{name: "flag first", cwd: filepath.Dir(local), flag: flagFile, env: map[string]string{"FRAISIER_CONFIG": envFile}, system: system, want: flagFile},
		{name: "then FRAISIER_CONFIG", cwd: filepath.Dir(local), env: map[string]string{"FRAISIER_CONFIG": envFile}, system: system, want: envFile},
		{name: "then ./fraises.yaml", cwd: filepath.Dir(local), env: map[string]string{"FRAISIER_CONFIG": ""}, system: system, want: "fraises.yaml"},
		{name: "then the system file", cwd: empty, system: system, want: system},
		{name: "flag naming a missing file does not fall back", cwd: filepath.Dir(local), flag: "nowhere.yaml", system: system,
			wantErr: []string{"nowhere.yaml", "--config", "does not exist"}},
		{name: "FRAISIER_CONFIG naming a missing file does not fall back", cwd: filepath.Dir(local), env: map[string]string{"FRAISIER_CONFIG": "nowhere.yaml"}, system: system,
			wantErr: []string{"nowhere.yaml", "$FRAISIER_CONFIG", "does not exist"}},
		{name: "a directory is not a file", cwd: empty, flag: dir, system: system, wantErr: []string{"is a directory"}},
		{name: "nothing anywhere", cwd: empty, system: filepath.Join(dir, "none.yaml"),
			wantErr: []string{"no configuration file found", "--config (not given)", "$FRAISIER_CONFIG (not set)", "fraises.yaml", filepath.Join(dir, "none.yaml")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(tc.cwd)
			got, err := find(tc.flag, mapEnv(tc.env), tc.system)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("found %s, want an error", got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("found %s, want %s", got, tc.want)
			}
		})
	}
}

// TestFindUsesSystemPath pins the documented system location: Find
// returns it where the file exists, and names it among the places tried
// where it does not.
func TestFindUsesSystemPath(t *testing.T) {
	t.Chdir(t.TempDir())
	const system = "/etc/fraisier/fraises.yaml"
	got, err := Find("", mapEnv(nil))
	switch {
	case err == nil && got != system:
		t.Errorf("Find = %s, want %s (the only candidate left)", got, system)
	case err != nil && !strings.Contains(err.Error(), system):
		t.Errorf("error %q does not name %s", err, system)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "fraises.yaml"), Options{})
	if err == nil || !strings.Contains(err.Error(), "read configuration") {
		t.Errorf("got %v, want a read error", err)
	}
}
