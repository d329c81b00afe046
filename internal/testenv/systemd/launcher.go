package systemd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The launcher runs in the test binary re-executed by Start, already inside
// a new mount namespace (CLONE_NEWNS). It has to be the test binary itself:
// the mounts must happen in the process that then becomes systemd, and a
// shell script written at run time would be one more thing to clean up.
const (
	launcherEnv       = "FRAISIER_TESTENV_SYSTEMD_LAUNCHER"
	launcherBinEnv    = "FRAISIER_TESTENV_SYSTEMD_BIN"
	launcherCgroupEnv = "FRAISIER_TESTENV_SYSTEMD_CGROUP"
	// launcherUnifiedEnv, when set, is the host's v2 mount to show the
	// manager at /sys/fs/cgroup (hybrid hosts; see findCgroupLayout).
	launcherUnifiedEnv = "FRAISIER_TESTENV_SYSTEMD_UNIFIED"
)

// exitNotPermitted tells Start that the kernel refused a mount: a container
// without CAP_SYS_ADMIN, where the manager is unavailable rather than broken.
const exitNotPermitted = 3

// init turns the test binary into the launcher when Start re-executes it.
// It runs before the test framework parses flags or runs any test.
func init() {
	if os.Getenv(launcherEnv) != "1" {
		return
	}
	err := launch()
	fmt.Fprintf(os.Stderr, "testenv systemd launcher: %v\n", err)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		os.Exit(exitNotPermitted)
	}
	os.Exit(1)
}

// launch prepares the namespace and execs systemd; it returns only on error.
func launch() error {
	// The new namespace starts as a copy whose mounts may still propagate to
	// the host; make everything private before mounting anything.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// systemd --user refuses to run unless /run/systemd/system exists, which
	// is how it recognises a system booted with systemd. A tmpfs over
	// /run/systemd (or over /run, where the host has no /run/systemd to mount
	// on) creates it without touching the host.
	target := "/run/systemd"
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		target = "/run"
	}
	if err := syscall.Mount("tmpfs", target, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", target, err)
	}
	if err := os.MkdirAll("/run/systemd/system", 0o755); err != nil {
		return err
	}
	// systemd manages its units as sub-cgroups of its own cgroup and moves
	// every process it finds there into init.scope, so it must own one: the
	// directory Start made for it.
	procs := os.Getenv(launcherCgroupEnv) + "/cgroup.procs"
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("join cgroup: %w", err)
	}
	if unified := os.Getenv(launcherUnifiedEnv); unified != "" {
		// Only the v2 hierarchy, where /sys/fs/cgroup showed the v1 ones:
		// systemd then runs in unified mode and cannot reach v1 controllers.
		if err := syscall.Mount(unified, cgroupRoot, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", unified, cgroupRoot, err)
		}
	}
	bin := os.Getenv(launcherBinEnv)
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FRAISIER_TESTENV_SYSTEMD_") {
			env = append(env, kv)
		}
	}
	// Without journald, service output would be lost; inherit sends it to
	// the manager's own output, which Start keeps in a log file.
	argv := []string{bin, "--user", "--default-standard-output=inherit", "--default-standard-error=inherit"}
	return fmt.Errorf("exec %s: %w", bin, syscall.Exec(bin, argv, env))
}
