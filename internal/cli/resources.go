package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// configOptions loads configurations as this environment sees them; a
// credential named fraisier_X is read, outside the packaged unit, from the
// file X of the directory that unit loads (root's commands beside serve).
func (a *app) configOptions() config.Options {
	return config.Options{
		LookupEnv:   a.env.Lookup,
		Credentials: config.CredentialsDir{Dir: packagedCredentials, Prefix: "fraisier"},
	}
}

// loadConfig finds and loads fraises.yaml; a missing or invalid file is an
// error (exit code ExitConfig).
func (a *app) loadConfig() (*config.Config, error) {
	path, err := config.Find(a.configPath, a.env.Lookup)
	if err != nil {
		return nil, withCode(ExitConfig, err)
	}
	cfg, err := config.Load(path, a.configOptions())
	if err != nil {
		return nil, withCode(ExitConfig, err)
	}
	a.fillStateDir(cfg)
	return cfg, nil
}

// fillStateDir gives the configuration fraisier's own directory, where its
// git mirrors live, when state.dir names none: the directory of the SQLite
// state database this run uses, else of the default one (for a PostgreSQL
// state). It stays empty only when neither can be told, and a deployment
// then says so.
func (a *app) fillStateDir(cfg *config.Config) {
	if cfg.State.Dir != "" {
		return
	}
	path := a.stateFromConfig(cfg).Path
	if path == "" {
		path = store.DefaultPath(a.env.Euid, a.env.Lookup)
	}
	if path == "" {
		return
	}
	if abs, err := filepath.Abs(path); err == nil {
		cfg.State.Dir = filepath.Dir(abs)
	}
}

// stateLocation says which state database to open: --state, then
// $FRAISIER_STATE, then the configuration's state section, then the default.
// The configuration is read only when the first two are unset, so that
// history and stats work against a state file even without a config.
func (a *app) stateLocation() (store.Options, error) {
	if loc := a.statePath; loc != "" {
		return storeOptions(loc), nil
	}
	if loc := a.env.get("FRAISIER_STATE"); loc != "" {
		return storeOptions(loc), nil
	}
	path, err := config.Find(a.configPath, a.env.Lookup)
	if err == nil {
		cfg, err := config.Load(path, a.configOptions())
		if err != nil {
			return store.Options{}, withCode(ExitConfig, err)
		}
		return a.stateFromConfig(cfg), nil
	}
	if a.configPath != "" || a.env.get("FRAISIER_CONFIG") != "" {
		// The user named a configuration that is not there: say so rather
		// than silently using the default state.
		return store.Options{}, withCode(ExitConfig, err)
	}
	return store.Options{Path: store.DefaultPath(a.env.Euid, a.env.Lookup)}, nil
}

func (a *app) stateFromConfig(cfg *config.Config) store.Options {
	switch {
	case a.statePath != "":
		return storeOptions(a.statePath)
	case a.env.get("FRAISIER_STATE") != "":
		return storeOptions(a.env.get("FRAISIER_STATE"))
	case cfg.State.URL.Reveal() != "":
		return store.Options{URL: cfg.State.URL.Reveal()}
	case cfg.State.Path != "":
		return store.Options{Path: cfg.State.Path}
	}
	return store.Options{Path: store.DefaultPath(a.env.Euid, a.env.Lookup)}
}

func storeOptions(loc string) store.Options {
	if strings.HasPrefix(loc, "postgres://") || strings.HasPrefix(loc, "postgresql://") {
		return store.Options{URL: loc}
	}
	return store.Options{Path: loc}
}

func openStore(ctx context.Context, opts store.Options) (*store.DB, error) {
	db, err := store.Open(ctx, opts)
	if err != nil {
		code := ExitState
		return nil, withCode(code, fmt.Errorf("open state database: %w", err))
	}
	return db, nil
}

// openState opens the state database chosen by stateLocation.
func (a *app) openState(ctx context.Context) (*store.DB, error) {
	opts, err := a.stateLocation()
	if err != nil {
		return nil, err
	}
	return openStore(ctx, opts)
}

// notFound marks an unknown name given on the command line.
func notFound(format string, args ...any) error {
	return withCode(ExitNotFound, fmt.Errorf(format, args...))
}
