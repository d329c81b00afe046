package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestBackupAsUserChmodsOnlyItsDump: with a Credential (user:), pg_dump
// runs as the user and writes into the user's own backups directory; the
// mode fraisier then gives the dump must reach that dump and nothing else,
// whatever the user put at its path in the meantime. The fake pg_dump
// stands in for the user's process: it leaves a symbolic link to a file of
// root's, a hard link to one, a FIFO, or the dump itself.
func TestBackupAsUserChmodsOnlyItsDump(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "running pg_dump as another user needs root")
	}
	const nobody = 65534
	// Directories the user can search, as app_path's ancestors are.
	root, err := os.MkdirTemp("", "backup-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Exec resolves pg_dump with this process's PATH: not parallel.
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	tests := []struct {
		name string
		// dump is what pg_dump does with its --file argument, $f; $victim
		// is a file of root's, mode 0666 so that the user may hard-link it.
		dump    string
		wantErr string
	}{
		{"a dump", `echo dump > "$f"`, ""},
		{"a symlink to root's file", `ln -s "$victim" "$f"`, "symbolic link"},
		{"a hard link to root's file", `ln "$victim" "$f"`, "owned by uid 0"},
		{"a FIFO", `mkfifo "$f"`, "not a regular file"},
		{"a directory", `mkdir "$f"`, "not a regular file"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.Repeat("x", i+1))
			victim := filepath.Join(dir, "victim")
			backups := filepath.Join(dir, "backups")
			rel := filepath.Join(dir, "release")
			for _, d := range []string{dir, backups, rel} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(backups, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(backups, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(victim, []byte("root's\n"), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(victim, 0o666); err != nil { // past the umask
				t.Fatal(err)
			}
			script := "#!/bin/sh\nvictim=" + victim + "\n" +
				`while [ $# -gt 0 ]; do if [ "$1" = --file ]; then f=$2; fi; shift; done` + "\n" + tt.dump + "\n"
			if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			m, err := New(Config{Tool: ToolCommand, Dir: rel, URL: "postgres://app@127.0.0.1:1/app",
				Up: []string{"true"}, Current: []string{"echo", "1"}, Now: fixedClock,
				Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}})
			if err != nil {
				t.Fatal(err)
			}
			path, err := m.Backup(t.Context(), backups)
			fi, statErr := os.Stat(victim)
			if statErr != nil {
				t.Fatal(statErr)
			}
			if fi.Mode().Perm() != 0o666 {
				t.Errorf("Backup = %s, %v; root's file is now %v", path, err, fi.Mode())
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Backup = %s, %v; want an error saying %q", path, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Backup: %v", err)
			}
			fi, err = os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); fi.Mode() != 0o600 || st.Uid != nobody {
				t.Errorf("dump %s: mode %v, uid %d; want -rw------- and the user's", path, fi.Mode(), st.Uid)
			}
		})
	}
}
