package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// newMountedFixture is newFixture with a tmpfs of size bytes mounted on
// app_path/releases. The test's systemd manager runs in a mount namespace
// of its own, copied from the test's when it starts, so the file system
// is mounted before the manager starts for the service to see the
// releases on it.
func newMountedFixture(t *testing.T, size int64) *fixture {
	t.Helper()
	return setUpFixture(t, "releases", "", func(app string) {
		mountSmallFS(t, filepath.Join(app, releasesDir), size)
	})
}

// mountSmallFS mounts a tmpfs of size bytes on dir (created) and unmounts
// it when the test ends. A plain mount in the test's namespace: the
// manager started after it (newMountedFixture) sees it too.
func mountSmallFS(t *testing.T, dir string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "mounting a small file system needs root")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("fraisier-test", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		"size="+strconv.FormatInt(size, 10)+",mode=0755"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			testenv.Unavailable(t, "mount tmpfs on %s: %v (no CAP_SYS_ADMIN here)", dir, err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		// Lazy: a process still holding a file there must not keep the
		// mount (or the test's temporary directory) around.
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// freeBytes is what an unprivileged writer may still write under dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill writes a file under dir that leaves about leave bytes free.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	p := filepath.Join(dir, ".filler")
	n := freeBytes(t, dir) - leave
	if n <= 0 {
		t.Fatalf("only %d bytes free under %s, cannot leave %d", freeBytes(t, dir), dir, leave)
	}
	if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	return p
}

// entries lists every name in dir, hidden ones and leftovers included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestFaultDiskFull: the file system holding the releases (a 4 MiB tmpfs
// mounted on app_path/releases) is full. A release that does not fit, or
// an install step that fills the disk, fails before the switch: failed,
// "no space left on device" in the message, no partial release left (the
// space is given back), the previous release serving; once space is freed
// the next deployment succeeds.
func TestFaultDiskFull(t *testing.T) {
	f := newMountedFixture(t, 4<<20)
	releases := filepath.Join(f.app, releasesDir)
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")

	// Incompressible, so that no file system could store it in less.
	random := func(n int) string { return testenv.RandomHex(n / 2) }
	big := filepath.Join("assets", "big.bin")
	for _, tc := range []struct {
		name    string
		big     bool // the commit holds 1 MiB more than fits
		install *config.Command
		want    []string
		steps   string
	}{
		{
			// git's checkout says which file it could not write but not
			// why (git 2.39 drops the errno: "error: unable to write file
			// X"); fraisier looks at the filesystem and says it is full.
			name:  "the release does not fit",
			big:   true,
			want:  []string{"release: export ", "check out tree: no space left on device under ", "unable to write file " + big},
			steps: "fetch:succeeded release:failed",
		},
		{
			name: "the install step fills the disk",
			install: &config.Command{Argv: []string{"sh", "-c",
				"head -c 524288 /dev/zero > build.out"}},
			want:  []string{"install: sh -c ", "exit status 1", "No space left on device"},
			steps: "fetch:succeeded release:succeeded install:failed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filler := fill(t, releases, 256<<10)
			defer os.Remove(filler)
			sha := f.pushTree("healthy", func(work string) {
				if tc.big {
					writeFile(t, filepath.Join(work, big), random(1<<20))
				} else {
					os.Remove(filepath.Join(work, big))
				}
			})
			before := f.snapshot()
			onFS := entries(t, releases)
			free := freeBytes(t, releases)

			env := f.envWith(func(e *config.Environment) { e.Install = tc.install })
			res := f.deployEnv(env, Request{})
			if res.Status != store.StatusFailed {
				t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Err.Error(), w) {
					t.Fatalf("message %q does not say %q", res.Err, w)
				}
			}
			if got := f.stepNames(res.DeploymentID); got != tc.steps {
				t.Fatalf("steps %s, want %s", got, tc.steps)
			}
			f.assertRecorded(res)
			f.assertUnchanged(before, res.Status)
			// Nothing half-written stays behind: not a release, not a
			// temporary export directory, not the space they took.
			if got := entries(t, releases); !slices.Equal(got, onFS) {
				t.Fatalf("releases file system holds %v, want %v as before", got, onFS)
			}
			if now := freeBytes(t, releases); now < free {
				t.Fatalf("%d bytes free after the failure, %d before: the partial release was not removed", now, free)
			}
			t.Logf("%s: %v", f.stepNames(res.DeploymentID), res.Err)

			// Space freed: the same commit deploys.
			os.Remove(filler)
			res = f.deployEnv(env, Request{})
			f.expect(res, store.StatusSucceeded, "v")
			if res.NewSHA != sha || f.serving() != strings.TrimSpace(readFile(t, filepath.Join(f.app, currentLink, "VERSION"))) {
				t.Fatalf("after freeing space deployed %s serving %q, want %s", short(res.NewSHA), f.serving(), short(sha))
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
