package systemd

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	cgroupRoot   = "/sys/fs/cgroup"
	cgroupPrefix = "fraisier-testenv-"

	cgroupV2Magic = 0x63677270
)

// cgroupLayout says where a private manager's cgroup goes.
type cgroupLayout struct {
	// unified is where the cgroup v2 hierarchy is mounted on the host.
	unified string
	// base is the test binary's own v2 cgroup, under which the manager's
	// cgroup is made (in a container that is the container's cgroup).
	base string
}

// findCgroupLayout looks for a cgroup v2 hierarchy, which is all a private
// manager is given. On a hybrid host (v1 controllers plus v2 mounted at
// /sys/fs/cgroup/unified) systemd takes its own cgroup from the v2
// hierarchy, not from the named v1 "systemd" one, and then moves every
// process of that cgroup into init.scope: started from the host's root v2
// cgroup, it moves every process on the machine, and across the v1
// controllers too. So the manager gets its own v2 cgroup and, in its mount
// namespace, sees that hierarchy alone at /sys/fs/cgroup. A v1-only host
// offers no such confinement and is refused.
func findCgroupLayout() (cgroupLayout, error) {
	var l cgroupLayout
	for _, p := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
		var st syscall.Statfs_t
		if err := syscall.Statfs(p, &st); err == nil && st.Type == cgroupV2Magic {
			l.unified = p
			break
		}
	}
	if l.unified == "" {
		return l, unavailable("no cgroup v2 hierarchy at %s or %s/unified (cgroup v1 only is not supported: systemd would move host processes between cgroups)", cgroupRoot, cgroupRoot)
	}
	own, err := ownCgroupV2()
	if err != nil {
		return l, err
	}
	l.base = filepath.Join(l.unified, own)
	return l, nil
}

// hybrid reports whether the v2 hierarchy is not the one at /sys/fs/cgroup,
// so that the manager's namespace must have it mounted there.
func (l cgroupLayout) hybrid() bool { return l.unified != cgroupRoot }

func ownCgroupV2() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("no unified entry in /proc/self/cgroup")
}

// makeCgroup creates an empty cgroup for one manager. Its name carries the
// creating process id so that sweepCgroups can tell abandoned ones.
func makeCgroup(base string) (string, error) {
	sweepCgroups(base)
	var b [4]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(base, fmt.Sprintf("%s%d-%s", cgroupPrefix, os.Getpid(), hex.EncodeToString(b[:])))
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return "", unavailable("create cgroup: %v", err)
		}
		return "", fmt.Errorf("create cgroup: %w", err)
	}
	return dir, nil
}

// sweepCgroups removes cgroups left by test binaries that died without
// cleaning up (killed by go test's timeout, say).
func sweepCgroups(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		_ = removeCgroup(filepath.Join(base, e.Name()))
	}
}

// removeCgroup kills whatever still runs in the cgroup tree at dir and
// removes it, children first: cgroup directories go only with rmdir, and
// only once they have no processes and no children.
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk cgroup %s: %w", dir, err)
	}
	for _, d := range dirs {
		for _, pid := range cgroupProcs(d) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	slices.Reverse(dirs)
	var errs []error
	for _, d := range dirs {
		var err error
		// A killed process leaves its cgroup a moment after the signal.
		for range 100 {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
