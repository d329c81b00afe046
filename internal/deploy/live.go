package deploy

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/health"
)

// Live is what an environment looks like right now, from the outside
// systems rather than the record: what current points at, the head of the
// branch on the remote, whether the units run, whether the health check
// passes. A part that could not be asked says why in its error field.
type Live struct {
	CurrentRelease string          `json:"current_release"`
	BranchHead     string          `json:"branch_head"`
	BranchError    string          `json:"branch_error,omitempty"`
	Units          map[string]bool `json:"units"`
	UnitsError     string          `json:"units_error,omitempty"`
	Healthy        *bool           `json:"healthy"`
	HealthError    string          `json:"health_error,omitempty"`
	// Colour is the blue/green colour the proxy sends traffic to now.
	Colour      string `json:"colour,omitempty"`
	ColourError string `json:"colour_error,omitempty"`
}

// Inspect asks git, systemd and the health check about env, each bounded
// by timeout, and changes nothing: no fetch, no restart, one health try.
func Inspect(ctx context.Context, c Collaborators, env *config.Environment, timeout time.Duration) Live {
	var l Live
	appPath := env.CodePath()
	l.CurrentRelease, _ = currentRelease(appPath)

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if env.SharesCodeWith == "" {
		// Only fraisier's own mirror is asked, never one under app_path,
		// and it is not made here: status changes nothing.
		mirror, err := mirrorPath(env, os.Geteuid(), false)
		switch {
		case err != nil:
		case !isDir(mirror):
			err = errors.New("never fetched (no mirror yet)")
		default:
			var repo *git.Repo
			if repo, err = git.OpenMirror(ctx, mirror, env.GitRepo, git.Options{Timeout: timeout}); err == nil {
				l.BranchHead, err = repo.RemoteHead(ctx, env.Branch)
			}
		}
		if err != nil {
			l.BranchError = err.Error()
		}
	}

	if services := env.Services(); len(services) > 0 {
		units := c.Units(env.Scope)
		l.Units = map[string]bool{}
		for _, u := range services {
			active, err := units.IsActive(ctx, u)
			if err != nil {
				l.UnitsError = err.Error()
				break
			}
			l.Units[u] = active
		}
	}

	if env.IsBlueGreen() {
		l.Colour, l.ColourError = liveColour(ctx, c, env)
	}
	if env.HealthCheck != nil && l.CurrentRelease != "" {
		err := CheckHealth(ctx, c, env)
		ok := err == nil
		l.Healthy = &ok
		if err != nil {
			l.HealthError = err.Error()
		}
	}
	// A health command prints what it likes, and an error may carry a
	// URL: shown as step output is, without the configuration's secrets.
	scrub := scrubberFor(env)
	l.BranchError, l.UnitsError, l.HealthError = scrub.String(l.BranchError), scrub.String(l.UnitsError), scrub.String(l.HealthError)
	return l
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// CheckHealth runs env's health check once, now, without retries, as a
// deployment would (as the environment's user): what status and doctor
// report. Nil when env has no health check; the error is scrubbed of the
// configuration's secrets.
func CheckHealth(ctx context.Context, c Collaborators, env *config.Environment) error {
	hc := env.HealthCheck
	if hc == nil {
		return nil
	}
	check, err := (&deployment{env: env, c: c}).colourCheck(ctx, healthCheck(hc, env.Services()))
	if err != nil {
		return err
	}
	check.Retries, check.StartDelay = health.NoRetries, 0
	as, err := resolveAccount(env, os.Geteuid(), os.Getegid())
	if err == nil {
		err = as.supports(env)
	}
	if err == nil {
		check.Env, check.Credential = as.env(), as.credential()
		_, err = health.Run(ctx, check, health.Options{Units: c.Units(env.Scope)})
	}
	if err != nil {
		// A health command prints what it likes, and an error may carry
		// a URL: said without the configuration's secrets.
		return errors.New(scrubberFor(env).String(err.Error()))
	}
	return nil
}
