package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// ReadOnly makes path, a file or a directory that exists, read-only for
// this process until t ends: its write bits off, or, for root, whom they
// do not stop, a read-only bind mount of it over itself.
func ReadOnly(t testing.TB, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, st.Mode().Perm()&^0o222); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(path, st.Mode().Perm()) })
		return
	}
	if err := unix.Mount(path, path, "", unix.MS_BIND, ""); err != nil {
		Unavailable(t, "bind mount %s (root ignores mode bits): %v", path, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(path, 0); err != nil {
			t.Errorf("unmount %s: %v", path, err)
		}
	})
	if err := unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		Unavailable(t, "remount %s read-only: %v", path, err)
	}
}
