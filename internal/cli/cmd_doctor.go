package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// The results of a doctor check.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
)

// doctorJSON is the stable --json shape of doctor.
type doctorJSON struct {
	// OK is false when any check failed (warnings do not count).
	OK     bool          `json:"ok"`
	Checks []doctorCheck `json:"checks"`
}

// doctorCheck is one line of doctor: what was checked, where, the result
// and, unless it is ok, how to fix it.
type doctorCheck struct {
	Check       string `json:"check"`
	Fraise      string `json:"fraise,omitempty"`
	Environment string `json:"environment,omitempty"`
	Subject     string `json:"subject"`
	Result      string `json:"result"`
	Detail      string `json:"detail"`
	Fix         string `json:"fix,omitempty"`
}

// doctorOptions are doctor's arguments and flags.
type doctorOptions struct {
	fraise, env string
	timeout     time.Duration
}

func (a *app) doctorCommand() *cobra.Command {
	var (
		asJSON bool
		opts   doctorOptions
	)
	cmd := &cobra.Command{
		Use:   "doctor [fraise [environment]]",
		Short: "Check this host against the configuration: state database, remotes, app paths, units, health checks, listen address, disk",
		Long: "doctor checks, without changing anything, what a deployment needs of this host, one line per check: ok, warn or fail, " +
			"and how to fix what is not ok. It exits 14 when a check fails (3 when the configuration does not load).",
		Args: rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.fraise, opts.env = argAt(args, 0), argAt(args, 1)
			out, err := a.doctor(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				err = writeJSON(a.streams.Out, out)
			} else {
				err = a.printDoctor(out)
			}
			if err == nil && !out.OK {
				code := ExitCheckFailed
				if out.Checks[0].Result == checkFail { // the configuration
					code = ExitConfig
				}
				err = withCode(code, &silentError{errors.New("a check failed")})
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 5*time.Second, "bound on each check that asks another system (git remote, systemd, health check)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// doctor runs the checks the arguments select, in a stable order. A
// configuration that does not load is the one check that stops the rest;
// its problems are the detail, and the exit code is ExitConfig.
func (a *app) doctor(ctx context.Context, o doctorOptions) (doctorJSON, error) {
	cfg, cfgCheck := a.doctorConfig()
	out := doctorJSON{OK: true, Checks: []doctorCheck{cfgCheck}}
	if cfg == nil {
		out.OK = false
		return out, nil
	}
	envs, err := selectEnvironments(cfg, o.fraise, o.env)
	if err != nil {
		return doctorJSON{}, err
	}
	if o.fraise == "" {
		out.Checks = append(out.Checks, doctorSecrets(cfg)...)
	}
	out.Checks = append(out.Checks, a.doctorState(ctx, cfg)...)
	perEnv := make([][]doctorCheck, len(envs))
	var wg sync.WaitGroup
	for i, env := range envs {
		wg.Go(func() { perEnv[i] = doctorEnvironment(ctx, env, o.timeout) })
	}
	wg.Wait()
	for _, c := range perEnv {
		out.Checks = append(out.Checks, c...)
	}
	if o.fraise == "" {
		out.Checks = append(out.Checks, doctorListen(ctx, cfg.Server.Listen, o.timeout))
	}
	for _, c := range out.Checks {
		if c.Result == checkFail {
			out.OK = false
		}
	}
	return out, nil
}

// selectEnvironments are the configured environments the arguments name,
// in the configuration's order.
func selectEnvironments(cfg *config.Config, fraise, env string) ([]*config.Environment, error) {
	if fraise != "" {
		f, err := findFraise(cfg, fraise)
		if err != nil {
			return nil, err
		}
		if env != "" {
			e, err := findEnvironment(f, env)
			if err != nil {
				return nil, err
			}
			return []*config.Environment{e}, nil
		}
	}
	var envs []*config.Environment
	for _, fname := range cfg.FraiseNames() {
		if fraise != "" && fname != fraise {
			continue
		}
		f := cfg.Fraises[fname]
		for _, ename := range f.EnvironmentNames() {
			envs = append(envs, f.Environments[ename])
		}
	}
	return envs, nil
}

// doctorConfig finds and loads fraises.yaml: the configuration, or nil
// and a failed check listing every problem.
func (a *app) doctorConfig() (*config.Config, doctorCheck) {
	c := doctorCheck{Check: "config", Result: checkOK}
	path, err := config.Find(a.configPath, a.env.Lookup)
	if err != nil {
		c.Result, c.Detail, c.Fix = checkFail, err.Error(), "write fraises.yaml, or name it with --config or $FRAISIER_CONFIG"
		return nil, c
	}
	c.Subject = path
	cfg, err := a.loadConfig()
	if err != nil {
		c.Result, c.Detail, c.Fix = checkFail, err.Error(), "fraisier config validate "+path+" lists every problem with its line"
		return nil, c
	}
	n := 0
	for _, f := range cfg.Fraises {
		n += len(f.Environments)
	}
	c.Detail = fmt.Sprintf("valid: %d fraises, %d environments", len(cfg.Fraises), n)
	return cfg, c
}

// doctorState opens the state database read-only: reachable, at the
// schema this fraisier knows, and (SQLite) writable by this user. It
// creates and migrates nothing.
func (a *app) doctorState(ctx context.Context, cfg *config.Config) []doctorCheck {
	opts := a.stateFromConfig(cfg)
	c := doctorCheck{Check: "state", Subject: opts.Path, Result: checkOK}
	if opts.URL != "" {
		c.Subject = "postgres (state.url)"
	}
	if opts.Path != "" {
		if _, err := os.Stat(opts.Path); errors.Is(err, fs.ErrNotExist) {
			dir := existingAncestor(filepath.Dir(opts.Path))
			c.Result, c.Detail = checkWarn, "not created yet; the first fraisier command that needs it creates it"
			if err := writable(dir); err != nil {
				c.Result, c.Detail, c.Fix = checkFail, "not created yet, and it cannot be: "+err.Error(), "create "+filepath.Dir(opts.Path)+" writable by this user, or set state.path"
			}
			return []doctorCheck{c}
		}
	}
	opts.ReadOnly = true
	db, err := store.Open(ctx, opts)
	if err == nil {
		defer db.Close()
		err = db.Ping(ctx)
	}
	switch {
	case errors.Is(err, store.ErrSchemaTooOld):
		c.Result, c.Detail, c.Fix = checkWarn, err.Error(), "the next fraisier command that writes (deploy, serve, prune) migrates it"
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, err.Error(), "check state.path / state.url and that this user may open it"
	default:
		have, _, verr := db.SchemaVersion(ctx)
		c.Detail = fmt.Sprintf("reachable, schema version %d", have)
		if verr != nil {
			c.Result, c.Detail = checkFail, verr.Error()
		}
	}
	if c.Result != checkFail && opts.Path != "" {
		for _, p := range []string{opts.Path, filepath.Dir(opts.Path)} {
			if err := writable(p); err != nil {
				c.Result, c.Detail, c.Fix = checkFail, "not writable: "+err.Error(), "run fraisier as the user that owns "+p
				break
			}
		}
		if c.Result != checkFail {
			c.Detail += ", writable"
		}
	}
	return []doctorCheck{c}
}

// printDoctor writes doctor's lines: the result first, so that a failure
// stands out, then what was checked, the detail and the fix.
func (a *app) printDoctor(out doctorJSON) error {
	t := newTable(a.streams.Out, a.paintHeader("RESULT"), "CHECK", "WHERE", "SUBJECT", "DETAIL")
	counts := map[string]int{}
	for _, c := range out.Checks {
		counts[c.Result]++
		where := "-"
		if c.Fraise != "" {
			where = c.Fraise + "/" + c.Environment
		}
		detail := c.Detail
		if c.Fix != "" {
			detail += " → fix: " + c.Fix
		}
		t.row(a.paintCheck(c.Result), c.Check, where, orDash(a.shown(c.Subject)), orDash(a.shown(detail)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(a.streams.Out, "%d ok, %d warn, %d fail\n", counts[checkOK], counts[checkWarn], counts[checkFail])
	return err
}

// paintCheck colours a check's result as paintStatus colours a status.
func (a *app) paintCheck(r string) string {
	if !a.colorOn() {
		return r
	}
	c := map[string]string{checkOK: ansiGreen, checkWarn: ansiYellow, checkFail: ansiRed}[r]
	if c == "" {
		c = ansiDefault
	}
	return c + r + ansiReset
}

// oneLineErr is an error's message on one line.
func oneLineErr(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
