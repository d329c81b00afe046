package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServeAll answers on ls.Main and, with server.ui_listen, on ls.UI until
// ctx is done, then shuts both down together: it stops accepting, lets
// requests in flight finish and records every delivery already received.
// ready is called once both accept. When one stops with an error, the
// other is shut down and the error returned. It refuses a main listener
// that CheckListener refuses, and warns of a dashboard served in plain
// HTTP to other hosts (PlainDashboard).
func (s *Server) ServeAll(ctx context.Context, ls Listeners, ready func()) error {
	if err := s.checkListeners(ls); err != nil {
		s.Close()
		return err
	}
	type serving struct {
		hs *http.Server
		l  net.Listener
	}
	all := []serving{{s.httpServer(ctx, s.mux), ls.Main}}
	if ls.UI != nil {
		if msg := PlainDashboard(ls.UI.Addr(), len(s.proxies) > 0); msg != "" {
			s.log.Warn("server.ui_listen", "warning", msg)
		}
		all = append(all, serving{s.httpServer(ctx, s.uiMux), ls.UI})
	}
	errc := make(chan error, len(all))
	for _, sv := range all {
		go func() {
			if err := sv.hs.Serve(sv.l); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", sv.l.Addr(), err)
			}
		}()
	}
	if ready != nil {
		ready()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		if s.onStopping != nil {
			s.onStopping()
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, sv := range all {
		wg.Go(func() { errs[i] = sv.hs.Shutdown(shutdownCtx) })
	}
	wg.Wait()
	s.Close()
	if serveErr != nil {
		return serveErr
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shut down the HTTP server: %w", err)
		}
	}
	return nil
}

// checkListeners refuses a main listener that CheckListener refuses, and
// listeners that do not match server.ui_listen.
func (s *Server) checkListeners(ls Listeners) error {
	switch {
	case ls.Main == nil:
		return errors.New("serve: no listener")
	case s.uiMux != nil && ls.UI == nil:
		return errors.New("serve: server.ui_listen is set, but no listener was opened for it")
	case s.uiMux == nil && ls.UI != nil:
		return errors.New("serve: a listener for the dashboard, but server.ui_listen is not set")
	}
	return s.CheckListener(ls.Main)
}

// httpServer is an HTTP server of h with server's timeouts; its requests'
// contexts outlive ctx, so that Shutdown lets them finish.
func (s *Server) httpServer(ctx context.Context, h http.Handler) *http.Server {
	c := s.cfg.Server
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout(c.ReadTimeout.D()),
		ReadTimeout:       c.ReadTimeout.D(),
		WriteTimeout:      c.WriteTimeout.D(),
		IdleTimeout:       c.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Live logs end at shutdown: their clients resume elsewhere.
	hs.RegisterOnShutdown(s.logs.stop)
	return hs
}
