package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// minFreeDisk is the free space under which doctor warns about an
// app_path's filesystem: a release is a whole tree, and installs grow.
const minFreeDisk = 1 << 30

// doctorEnvironment runs one environment's checks, each bounded by
// timeout, all at once; the lines come back in a fixed order.
func doctorEnvironment(ctx context.Context, env *config.Environment, timeout time.Duration) []doctorCheck {
	fraise, name := env.Target()
	var checks []func(context.Context) doctorCheck
	if env.SharesCodeWith != "" {
		checks = append(checks, func(context.Context) doctorCheck {
			return doctorCheck{Check: "code", Subject: env.SharesCodeWith, Result: checkOK, Detail: "runs " + env.SharesCodeWith + "'s code: checked there"}
		})
	} else {
		checks = append(checks,
			func(ctx context.Context) doctorCheck { return doctorRemote(ctx, env) },
			func(context.Context) doctorCheck { return doctorAppPath(env.AppPath) },
			func(context.Context) doctorCheck { return doctorDisk(env.AppPath) },
		)
	}
	for _, u := range env.Services() {
		checks = append(checks, func(ctx context.Context) doctorCheck { return doctorUnit(ctx, env.Scope, u) })
	}
	checks = append(checks, doctorBlueGreen(env)...)
	if env.HandsOffSocket() {
		checks = append(checks, func(ctx context.Context) doctorCheck { return doctorSocket(ctx, env) })
	}
	if env.Database != nil {
		checks = append(checks, func(context.Context) doctorCheck { return doctorMigrate(env) })
	}
	if env.HealthCheck != nil {
		checks = append(checks, func(ctx context.Context) doctorCheck { return doctorHealth(ctx, env) })
	}
	out := make([]doctorCheck, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out[i] = check(ctx)
			out[i].Fraise, out[i].Environment = fraise, name
		})
	}
	wg.Wait()
	return out
}

// doctorRemote asks the git remote for the environment's branch.
func doctorRemote(ctx context.Context, env *config.Environment) doctorCheck {
	c := doctorCheck{Check: "remote", Subject: env.GitRepo, Result: checkOK}
	sha, err := git.LsRemote(ctx, env.GitRepo, env.Branch, git.Options{})
	switch {
	case errors.Is(err, git.ErrRefNotFound):
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), "push branch "+env.Branch+", or set the environment's branch:"
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), "check git_repo, the network and this user's ssh key or token for it"
	default:
		c.Detail = fmt.Sprintf("answers: %s is at %s", env.Branch, shortSHA(sha))
	}
	return c
}

// doctorAppPath checks that app_path is a directory this user can write,
// or, missing, that the first deployment can create it.
func doctorAppPath(path string) doctorCheck {
	c := doctorCheck{Check: "app_path", Subject: path, Result: checkOK}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := existingAncestor(filepath.Dir(path))
		if err := writable(parent); err != nil {
			c.Result, c.Detail, c.Fix = checkFail, "missing, and "+err.Error(), "create "+path+", owned by the user fraisier runs as"
		} else {
			c.Result, c.Detail = checkWarn, "missing; the first deployment creates it"
		}
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, err.Error(), "make "+path+" a directory the user fraisier runs as can write"
	case !fi.IsDir():
		c.Result, c.Detail, c.Fix = checkFail, "not a directory (mode "+fi.Mode().String()+")", "move it away and create "+path+" as a directory"
	default:
		err := writable(path)
		switch {
		case errors.Is(err, unix.EROFS):
			c.Result, c.Detail, c.Fix = checkFail, err.Error(), "its filesystem is mounted read-only here: list it in ReadWritePaths= of fraisier's unit (ProtectSystem=strict), or remount it read-write"
		case err != nil:
			c.Result, c.Detail, c.Fix = checkFail, err.Error(), "chown "+path+" to the user fraisier runs as"
		default:
			c.Detail = "a directory this user can write"
		}
	}
	return c
}

// doctorDisk warns when app_path's filesystem has little space left.
func doctorDisk(path string) doctorCheck {
	dir := existingAncestor(path)
	c := doctorCheck{Check: "disk", Subject: dir, Result: checkOK}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		c.Result, c.Detail = checkWarn, "cannot tell: "+err.Error()
		return c
	}
	free := st.Bavail * uint64(st.Bsize)
	c.Detail = fmt.Sprintf("%s free", humanBytes(free))
	if free < minFreeDisk {
		c.Result, c.Fix = checkWarn, "free space on this filesystem, or lower keep_releases"
	}
	return c
}

// doctorUnit asks the environment's systemd manager whether unit exists,
// and whether this user may restart it. It restarts nothing.
func doctorUnit(ctx context.Context, scope, unit string) doctorCheck {
	return doctorUnitAs(ctx, scope, unit, os.Geteuid())
}

// doctorUnitAs is doctorUnit for the user euid.
func doctorUnitAs(ctx context.Context, scope, unit string, euid int) doctorCheck {
	c, files := unitLoaded(ctx, scope, unit)
	if c.Result == checkFail {
		return c
	}
	if scope == string(systemd.ScopeSystem) && euid != 0 {
		if r, bad := unitFilesWritable(files, euid); bad {
			return withRight(c, r)
		}
	}
	return withRight(c, mayRestart(ctx, scope, unit, euid))
}

// unitLoaded asks the environment's systemd manager whether unit exists
// and is loaded from the files on disk, and returns those files.
func unitLoaded(ctx context.Context, scope, unit string) (doctorCheck, []string) {
	c := doctorCheck{Check: "unit", Subject: unit + " (" + scope + ")", Result: checkOK}
	m, err := systemd.New(systemd.Options{Scope: systemd.Scope(scope)})
	var st systemd.UnitFileState
	if err == nil {
		st, err = m.UnitFiles(ctx, unit)
	}
	switch {
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), doctorManagerFix(scope)
	case st.LoadState == "not-found":
		c.Result, c.Detail, c.Fix = checkFail, "no such unit", "install "+unit+" in "+m.UnitDir()+" and run systemctl"+scopeFlag(scope)+" daemon-reload"
	case st.LoadState != "loaded":
		c.Result, c.Detail, c.Fix = checkFail, "load state "+st.LoadState, "systemctl"+scopeFlag(scope)+" status "+unit+" says why"
	case st.NeedReload:
		c.Result, c.Detail, c.Fix = checkWarn, "its files changed on disk", "systemctl"+scopeFlag(scope)+" daemon-reload"
	default:
		c.Detail = "loaded from " + strings.Join(st.Files, ", ")
	}
	return c, st.Files
}

func scopeFlag(scope string) string {
	if scope == string(systemd.ScopeUser) {
		return " --user"
	}
	return ""
}

func doctorManagerFix(scope string) string {
	if scope == string(systemd.ScopeUser) {
		return "the user's systemd manager must run: loginctl enable-linger <user>, and XDG_RUNTIME_DIR set"
	}
	return "fraisier must reach the system manager (systemctl status)"
}

// doctorMigrate looks for the program the migration tool would start in
// the current release (or on PATH), as a deployment would resolve it.
func doctorMigrate(env *config.Environment) doctorCheck {
	c := doctorCheck{Check: "migrate", Subject: env.Database.Tool, Result: checkOK}
	prog, err := deploy.MigrationProgram(env)
	fix := "install it (the install: step, into the release's .venv), or set database.program / database.python"
	switch {
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), "fraisier config validate, and the database section"
	case prog == "":
		c.Detail = "built into fraisier"
	case !strings.Contains(prog, "/"):
		if p, err := exec.LookPath(prog); err != nil {
			c.Result, c.Detail, c.Fix = checkFail, prog+" is not on PATH", fix
		} else {
			c.Detail = "found " + p
		}
	default:
		st, err := os.Stat(prog)
		switch {
		case err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0:
			c.Detail = "found " + prog
		case !isDir(filepath.Join(env.CodePath(), "current")):
			c.Result, c.Detail = checkWarn, "nothing deployed yet: "+prog+" is looked for in the release"
		default:
			c.Result, c.Detail, c.Fix = checkFail, prog+" is not an executable file", fix
		}
	}
	return c
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// doctorHealth runs the environment's health check once, now.
func doctorHealth(ctx context.Context, env *config.Environment) doctorCheck {
	c := doctorCheck{Check: "health", Subject: healthSubject(env.HealthCheck), Result: checkOK, Detail: "answers"}
	if err := deploy.CheckHealth(ctx, deploy.RealCollaborators(nil), env); err != nil {
		units := env.Services()
		if env.IsBlueGreen() {
			units = env.BlueGreen.Units()[:2]
		}
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), "is the app running? systemctl"+scopeFlag(env.Scope)+" status "+strings.Join(units, " ")
	}
	return c
}

func healthSubject(hc *config.HealthCheck) string {
	switch {
	case hc.URL != "":
		return hc.URL
	case hc.TCP != "":
		return "tcp " + hc.TCP
	case len(hc.Command) > 0:
		return "command " + hc.Command[0]
	}
	return "units active"
}

// listenNotTCP is the listen check's detail for a unix socket or systemd.
const listenNotTCP = "not a TCP address: not checked"

// doctorListen checks that addr, the value of key (server.listen, or
// server.ui_listen), is free, or held by a fraisier serve already, which
// held tells.
func doctorListen(ctx context.Context, key, addr string, timeout time.Duration, held func(context.Context, string, time.Duration) bool) doctorCheck {
	c := doctorCheck{Check: "listen", Subject: addr, Result: checkOK}
	if addr == "systemd" || strings.HasPrefix(addr, "unix:") {
		c.Detail = listenNotTCP
		return c
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
		c.Detail = "free"
		return c
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), "set "+key+" to an address of this host"
		return c
	}
	if held(ctx, addr, timeout) {
		c.Detail = "fraisier serve already listens there"
		return c
	}
	c.Result, c.Detail, c.Fix = checkFail, "in use by another program", "stop it, or set "+key+" to another address"
	return c
}

// servesFraisier tells whether what listens on addr answers as fraisier
// serve does: GET /providers, which only fraisier answers.
func servesFraisier(ctx context.Context, addr string, timeout time.Duration) bool {
	return answersGET(ctx, "http://"+addr+"/providers", timeout, func(resp *http.Response, _ []byte) bool {
		return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")
	})
}

// writable says why this user cannot write path, or nil. It asks the
// kernel (access(2)), which also knows of read-only mounts.
func writable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return fmt.Errorf("%s is not writable by uid %d: %w", path, os.Geteuid(), err)
	}
	return nil
}

// existingAncestor is path or its nearest ancestor that exists.
func existingAncestor(path string) string {
	for {
		if _, err := os.Lstat(path); err == nil || filepath.Dir(path) == path {
			return path
		}
		path = filepath.Dir(path)
	}
}

func humanBytes(n uint64) string {
	const gib, mib = 1 << 30, 1 << 20
	if n >= gib {
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
	return fmt.Sprintf("%d MiB", n/mib)
}
