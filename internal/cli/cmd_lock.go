package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// operatorLockTTL is how long a lock taken by hand lasts: until someone
// unlocks it, in practice.
const operatorLockTTL = 100 * 365 * 24 * time.Hour

func (a *app) lockCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "lock <fraise> <environment> --reason TEXT",
		Short: "Hold an environment: deployments are refused (naming you and the reason) until unlock",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return &usageError{errors.New("--reason is required: others will read it when their deploy is refused")}
			}
			env, db, err := a.targetStore(cmd, args)
			if err != nil {
				return err
			}
			defer db.Close()
			t := targetOf(env)
			host, _ := os.Hostname()
			who := actor(a.env)
			_, err = db.AcquireLock(cmd.Context(), store.Lock{Target: t, Owner: "operator:" + who, Host: host, PID: os.Getpid(), Reason: reason},
				operatorLockTTL, func(store.Lock) bool { return false })
			if errors.Is(err, store.ErrLocked) {
				return withCode(ExitLocked, err)
			}
			if err != nil {
				return withCode(ExitState, err)
			}
			_, err = fmt.Fprintf(a.streams.Out, "%s locked by %s: %s\n", t, who, reason)
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown to whoever tries to deploy)")
	return cmd
}

func (a *app) unlockCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "unlock <fraise> <environment> --reason TEXT",
		Short: "Release an environment's lock, whoever holds it (the takeover is recorded)",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return &usageError{errors.New("--reason is required: breaking a lock is recorded with it")}
			}
			env, db, err := a.targetStore(cmd, args)
			if err != nil {
				return err
			}
			defer db.Close()
			t := targetOf(env)
			prev, err := db.ForceUnlock(cmd.Context(), t, reason)
			if errors.Is(err, store.ErrNotFound) {
				return withCode(ExitNotFound, fmt.Errorf("%s is not locked", t))
			}
			if err != nil {
				return withCode(ExitState, err)
			}
			_, err = fmt.Fprintf(a.streams.Out, "%s unlocked (was held by %s since %s: %s)\n", t, prev.Owner, fmtTime(prev.AcquiredAt), orDash(prev.Reason))
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the lock is broken (recorded)")
	return cmd
}

// targetStore finds the environment named by args (fraise, environment)
// in the configuration and opens the state database it names.
func (a *app) targetStore(cmd *cobra.Command, args []string) (*config.Environment, *store.DB, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	env, err := cfg.Lookup(args[0], args[1])
	if err != nil {
		return nil, nil, withCode(ExitNotFound, err)
	}
	db, err := openStore(cmd.Context(), a.stateFromConfig(cfg))
	if err != nil {
		return nil, nil, err
	}
	return env, db, nil
}

func targetOf(env *config.Environment) store.Target {
	fraise, name := env.Target()
	return store.Target{Fraise: fraise, Environment: name}
}
