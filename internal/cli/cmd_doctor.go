package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
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
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 5*time.Second, "bound on each check that asks another system (state database, git remote, systemd, health check)")
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
	out.Checks = append(out.Checks, a.doctorConcurrently(ctx, cfg, envs, o)...)
	// The state URL may come from --state or $FRAISIER_STATE, which the
	// configuration's secrets do not include.
	scrub := deploy.NewScrubber(append(cfg.SecretValues(), urlPassword(a.stateFromConfig(cfg).URL)))
	for i, c := range out.Checks {
		if c.Result == checkFail {
			out.OK = false
		}
		out.Checks[i].Subject, out.Checks[i].Detail, out.Checks[i].Fix = scrub.String(c.Subject), scrub.String(c.Detail), scrub.String(c.Fix)
	}
	return out, nil
}

// doctorConcurrently runs the checks that wait on something else (the
// state database, each environment's, serve's listen address) all at
// once, each bounded by o.timeout: the run takes as long as the slowest,
// not their sum. The lines come back in a fixed order.
func (a *app) doctorConcurrently(ctx context.Context, cfg *config.Config, envs []*config.Environment, o doctorOptions) []doctorCheck {
	var (
		state   doctorCheck
		listen  []doctorCheck
		perEnv  = make([][]doctorCheck, len(envs))
		sandbox *serveSandbox
		wg      sync.WaitGroup
	)
	wg.Go(func() { state = a.doctorState(ctx, cfg, o.timeout) })
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		sandbox = loadServeSandbox(ctx)
	})
	for i, env := range envs {
		wg.Go(func() { perEnv[i] = doctorEnvironment(ctx, env, o.timeout) })
	}
	if o.fraise == "" {
		wg.Go(func() { listen = doctorListens(ctx, cfg.Server, o.timeout) })
	}
	wg.Wait()
	out := []doctorCheck{state}
	for i, c := range perEnv {
		out = append(out, c...)
		if sandbox != nil && envs[i].SharesCodeWith == "" {
			out = append(out, sandbox.check(envs[i]))
		}
	}
	if o.fraise == "" {
		out = append(out, listen...)
	}
	return out
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

// doctorState checks the state database within timeout: reachable
// (opened read-only), at the schema this fraisier knows, and writable by
// this user or role (store.CheckWritable, which asks and does not write).
// It creates and migrates nothing.
func (a *app) doctorState(ctx context.Context, cfg *config.Config, timeout time.Duration) doctorCheck {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := a.stateFromConfig(cfg)
	source := a.stateSource(opts)
	c := doctorCheck{Check: "state", Subject: opts.Path, Result: checkOK}
	if opts.URL != "" {
		c.Subject = "postgres (" + source + ")" // never the URL: it may hold a password
	}
	if opts.Path != "" {
		if _, err := os.Stat(opts.Path); errors.Is(err, fs.ErrNotExist) {
			dir := existingAncestor(filepath.Dir(opts.Path))
			c.Result, c.Detail = checkWarn, "not created yet; the first fraisier command that needs it creates it"
			if err := writable(dir); err != nil {
				c.Result, c.Detail, c.Fix = checkFail, "not created yet, and it cannot be: "+err.Error(), "create "+filepath.Dir(opts.Path)+" writable by this user, or set state.path"
			}
			return c
		}
	}
	opts.ReadOnly = true
	// Both ask the server on a connection of their own: at once, the check
	// costs one connection's time rather than two.
	writableErr := make(chan error, 1)
	go func() { writableErr <- store.CheckWritable(ctx, opts) }()
	have, known, err := stateSchema(ctx, opts)
	var verr *store.SchemaVersionError
	switch {
	case errors.As(err, &verr) && errors.Is(err, store.ErrSchemaTooOld):
		c.Result, c.Fix = checkWarn, "the next fraisier command that writes (deploy, serve, prune) migrates it"
		c.Detail = fmt.Sprintf("reachable, schema version %d of %d (older than this fraisier)", verr.Have, verr.Known)
	case errors.As(err, &verr):
		c.Result, c.Fix = checkFail, "upgrade fraisier to the version that wrote it, or point "+source+" at another database"
		c.Detail = fmt.Sprintf("reachable, schema version %d of %d (newer than this fraisier)", verr.Have, verr.Known)
		return c
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, stateErr(ctx, err, timeout), stateFix(opts, source)
		return c
	default:
		c.Detail = fmt.Sprintf("reachable, schema version %d of %d", have, known)
	}
	var werr *store.WriteAccessError
	switch err := <-writableErr; {
	case errors.As(err, &werr):
		c.Result, c.Detail, c.Fix = checkFail, "not writable: "+werr.What, werr.Fix
	case err != nil:
		c.Result, c.Detail, c.Fix = checkFail, stateErr(ctx, err, timeout), stateFix(opts, source)
	default:
		c.Detail += ", writable"
	}
	return c
}

// stateSchema opens the state database as opts says and reads its schema
// version and the newest this fraisier knows.
func stateSchema(ctx context.Context, opts store.Options) (have, known int, err error) {
	db, err := store.Open(ctx, opts)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	return db.SchemaVersion(ctx)
}

// stateErr is err on one line, saying so when it is the timeout's.
func stateErr(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s: %s", timeout, oneLineErr(err))
	}
	return oneLineErr(err)
}

// stateSource is the setting that names the state database, as
// stateFromConfig chose opts.
func (a *app) stateSource(opts store.Options) string {
	switch {
	case a.statePath != "":
		return "--state"
	case a.env.get("FRAISIER_STATE") != "":
		return "$FRAISIER_STATE"
	case opts.URL != "":
		return "state.url"
	}
	return "state.path"
}

func stateFix(opts store.Options, source string) string {
	if opts.URL != "" {
		return "check " + source + " (host, port, database, user, password) and that PostgreSQL runs there and lets this host in (pg_hba.conf)"
	}
	return "check " + source + " and that this user may open it"
}

// urlPassword is the password rawURL holds, or "".
func urlPassword(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
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
