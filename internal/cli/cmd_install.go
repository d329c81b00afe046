package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/polkit"
)

func (a *app) installCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install what a privilege model needs on this host",
		Args:  rangeArgs(0, 0),
		RunE: func(*cobra.Command, []string) error {
			return &usageError{errors.New("install needs a subcommand: polkit")}
		},
	}
	cmd.AddCommand(a.installPolkitCommand())
	return cmd
}

// installPolkitOptions are install polkit's flags.
type installPolkitOptions struct {
	output, user string
	print        bool
}

func (a *app) installPolkitCommand() *cobra.Command {
	var o installPolkitOptions
	cmd := &cobra.Command{
		Use:   "polkit",
		Short: "Write the polkit rule that lets the fraisier user restart the system units fraises.yaml names, and no others",
		Long: `install polkit writes a polkit rule, generated from fraises.yaml, that lets
one user (fraisier, or --user) start, restart, reload, stop and reset-failed exactly the
system units the environments in scope: system name, and nothing else: any
other request is left to the other rules and polkit's defaults, which refuse
an unprivileged user. Run it as root after every change to fraises.yaml;
the package's fraisier-polkit.path does that when the file changes. An
invalid fraises.yaml leaves the installed rule as it was (exit 3).

The rule is written atomically (mode 0644); an unchanged rule is not
rewritten. --print writes it to standard output instead and needs no root.

Not granted, on purpose: daemon-reload (after changing a unit file, root runs
systemctl daemon-reload before the next deployment), and everything a
scheduled environment in scope: system needs (writing unit files to
/etc/systemd/system, enabling timers): such environments are named on
standard error and left out. Keep the units' files root's: a unit file the
fraisier user can write (under an app_path) would let it run anything as
root at the next restart.`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.installPolkit(o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", polkit.DefaultPath, "where to write the rule")
	f.StringVar(&o.user, "user", polkit.DefaultUser, "the user the rule lets restart the units (the one fraisier serve runs as)")
	f.BoolVar(&o.print, "print", false, "write the rule to standard output, not to --output")
	f.BoolVar(&o.print, "dry-run", false, "the same as --print")
	return cmd
}

func (a *app) installPolkit(o installPolkitOptions) error {
	if err := polkit.ValidateUser(o.user); err != nil {
		return &usageError{fmt.Errorf("--user: %w", err)}
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	plan := polkit.FromConfig(cfg)
	rule, err := polkit.Render(polkit.Grant{User: o.user, Units: plan.Units, Source: cfg.Path})
	if err != nil {
		return withCode(ExitConfig, fmt.Errorf("%s: %w (fix the environment's systemd_service)", cfg.Path, err))
	}
	for _, l := range plan.Left {
		fmt.Fprintf(a.streams.Err, "warning: %s (scope: system): %s not in the rule: %s; fix: %s\n",
			l.Target, strings.Join(l.Units, ", "), l.Why, l.Fix)
	}
	if _, err := user.Lookup(o.user); err != nil {
		fmt.Fprintf(a.streams.Err, "warning: user %s: %v; the rule takes effect once it exists (the package creates fraisier)\n", o.user, err)
	}
	if o.print {
		_, err := a.streams.Out.Write(rule)
		return err
	}
	return a.writePolkitRule(cfg, o, plan, rule)
}

// writePolkitRule installs rule at o.output and says what it grants.
func (a *app) writePolkitRule(cfg *config.Config, o installPolkitOptions, plan polkit.Plan, rule []byte) error {
	dir := filepath.Dir(o.output)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("install polkit rule: %s is not a directory: is polkit installed? (apt install polkitd), or give --output", dir)
	}
	// The errors are reported as text: a file error would otherwise pass
	// for an unreachable state database (store.IsUnavailable takes any
	// net.Error, which *fs.PathError is).
	changed, err := polkit.WriteRule(o.output, rule)
	switch {
	case errors.Is(err, fs.ErrPermission) && a.env.Euid != 0:
		return fmt.Errorf("%v: run it as root (sudo fraisier install polkit)", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%v: %s belongs to polkitd: root needs CAP_DAC_OVERRIDE to write there (CapabilityBoundingSet= of the unit that runs this)", err, dir)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%v: under systemd, list %s in ReadWritePaths=", err, dir)
	case err != nil:
		return fmt.Errorf("%v", err)
	}
	what := "wrote"
	if !changed {
		what = "unchanged"
	}
	grants := fmt.Sprintf("%s may %s %s", o.user, strings.Join(polkit.Verbs(), ", "), strings.Join(plan.Units, ", "))
	if len(plan.Units) == 0 {
		grants = "it grants nothing: no environment in scope: system names a unit in " + cfg.Path
	}
	_, err = fmt.Fprintf(a.streams.Out, "%s %s: %s\n", what, o.output, grants)
	return err
}
