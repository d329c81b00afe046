package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// sampleEvery is how often the server's resident memory is read.
const sampleEvery = 100 * time.Millisecond

func measureBaseline(ctx context.Context, self, root string, b *bodies, conns int, warm, window time.Duration) (measured, error) {
	addr, err := freeAddr()
	if err != nil {
		return measured{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-baseline-listen", addr)
	cmd.Env = append(os.Environ(), "WEBHOOKBENCH_SECRET="+secret)
	c, err := startChild(cmd, filepath.Join(root, "baseline.log"), "http://"+addr+"/ready")
	if err != nil {
		return measured{}, err
	}
	s := sampleRSS(c.pid(), sampleEvery)
	load := drive(addr, c.pid(), b, conns, warm, window)
	maxRSS, hwm := s.finish()
	if err := c.stop(10 * time.Second); err != nil {
		// An HTTP server that gets SIGTERM without handling it exits with
		// the signal: that is the expected end of the baseline.
		if !strings.Contains(err.Error(), "signal: terminated") {
			return measured{}, err
		}
	}
	return measured{name: "baseline (read, HMAC, decode)", load: load, maxRSS: maxRSS, hwm: hwm, isBaseRun: true}, nil
}

func measureFraisier(ctx context.Context, bin string, w *work, round int, b *bodies, conns int, warm, window time.Duration) (measured, error) {
	dir := filepath.Join(w.root, fmt.Sprintf("round%d", round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return measured{}, fmt.Errorf("round directory: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return measured{}, err
	}
	cfg, err := w.writeConfig(dir, addr)
	if err != nil {
		return measured{}, err
	}
	cmd := exec.CommandContext(ctx, bin, "--config", cfg, "serve")
	cmd.Env, cmd.Dir = w.env, dir
	logPath := filepath.Join(dir, "serve.log")
	c, err := startChild(cmd, logPath, "http://"+addr+"/ready")
	if err != nil {
		return measured{}, err
	}
	s := sampleRSS(c.pid(), sampleEvery)
	load := drive(addr, c.pid(), b, conns, warm, window)
	maxRSS, hwm := s.finish()
	if err := c.stop(60 * time.Second); err != nil {
		return measured{}, err
	}
	m := measured{name: "fraisier serve", load: load, maxRSS: maxRSS, hwm: hwm}
	if fi, err := os.Stat(logPath); err == nil {
		m.logBytes = fi.Size()
	}
	if err := m.readState(ctx, filepath.Join(dir, "state.db")); err != nil {
		return measured{}, err
	}
	return m, nil
}

// readState counts what fraisier recorded, once it has stopped.
func (m *measured) readState(ctx context.Context, path string) error {
	db, err := store.Open(ctx, store.Options{Path: path, ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM tb_webhook_event").Scan(&m.recorded); err != nil {
		return fmt.Errorf("count webhook events: %w", err)
	}
	group := func(q string) (string, error) {
		rows, err := db.SQL().QueryContext(ctx, q)
		if err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
		defer rows.Close()
		var parts []string
		for rows.Next() {
			var (
				k string
				n int64
			)
			if err := rows.Scan(&k, &n); err != nil {
				return "", fmt.Errorf("%s: %w", q, err)
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
		if err := rows.Err(); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
		return strings.Join(parts, ", "), nil
	}
	if m.outcomes, err = group("SELECT outcome, count(*) FROM tb_webhook_event GROUP BY outcome ORDER BY outcome"); err != nil {
		return err
	}
	m.deploys, err = group("SELECT status, count(*) FROM tb_deployment GROUP BY status ORDER BY status")
	return err
}
