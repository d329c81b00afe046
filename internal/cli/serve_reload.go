package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
)

// reloadOnHangup reloads the configuration on every SIGHUP until ctx is
// done; the channel it returns is closed then. SIGHUP is caught from the
// moment it returns.
func (a *app) reloadOnHangup(ctx context.Context, s serving) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.reload(s)
			}
		}
	}()
	return done
}

// reload loads and validates the configuration file as serve's start
// does and, when it loads, hands it to the workers, then to the intake:
// a delivery routed by the new file finds its target in the workers'.
// When it does not load, every problem is logged and nothing changes.
// systemd hears RELOADING=1, then READY=1.
func (a *app) reload(s serving) {
	a.notify(s, "RELOADING=1\nMONOTONIC_USEC="+monotonicUsec())
	defer a.notify(s, "READY=1")
	s.log.Info("reloading the configuration")
	cfg, err := a.loadConfig()
	if err != nil {
		if s.srv != nil {
			s.srv.ReloadRefused()
		}
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				s.log.Error("configuration problem", "problem", p.String())
			}
		}
		s.log.Error("configuration reload refused: the configuration in use stays", "err", err.Error())
		return
	}
	if s.listen != "" {
		cfg.Server.Listen = s.listen
	}
	for _, w := range cfg.Warnings {
		s.log.Warn("configuration", "warning", w.String())
	}
	s.runner.SetConfig(cfg)
	s.notes.cfg.Store(cfg)
	var restart []string
	if s.srv != nil {
		restart = s.srv.Reload(cfg)
	}
	s.log.Info("configuration reloaded", "fraises", len(cfg.Fraises))
	if len(restart) > 0 {
		s.log.Warn("configuration reload: these settings keep their old values until serve restarts", "restart_needed", restart)
	}
}

func (a *app) notify(s serving, state string) {
	if err := server.Notify(a.env.get, state); err != nil {
		s.log.Warn("sd_notify", "err", err)
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
