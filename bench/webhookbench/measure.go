package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	load := drive(addr, c.pid(), b, conns, warm, window, 0)
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

func measureFraisier(ctx context.Context, s measuredServer, w *work, round int, b *bodies, o options) (measured, error) {
	dir, err := os.MkdirTemp(w.root, fmt.Sprintf("round%d-", round))
	if err != nil {
		return measured{}, fmt.Errorf("round directory: %w", err)
	}
	f, err := startFraisier(ctx, s.bin, w, dir, b)
	if err != nil {
		return measured{}, err
	}
	rss := sampleRSS(f.pid(), sampleEvery)
	load := drive(f.addr, f.pid(), b, o.conns, o.warmup, o.duration, s.redeliver)
	load.total202++ // prime's
	maxRSS, hwm := rss.finish()
	if err := f.stop(60 * time.Second); err != nil {
		return measured{}, err
	}
	m := measured{name: serverName(s, o), bin: s.bin, redeliver: s.redeliver, load: load, maxRSS: maxRSS, hwm: hwm}
	if fi, err := os.Stat(f.log); err == nil {
		m.logBytes = fi.Size()
	}
	if err := m.readState(ctx, filepath.Join(dir, "state.db"), w); err != nil {
		return measured{}, err
	}
	if !o.keep {
		// A copy of a grown database is large: gone once counted.
		_ = os.RemoveAll(dir)
	}
	return m, nil
}

// fraisier is a fraisier serve started by the benchmark.
type fraisier struct {
	*child
	addr string
}

// startFraisier starts bin's serve in dir, on a copy of the grown state
// database if there is one, and primes it: once it returns, the push of
// main's tip is recorded (and, held, its deployment runs).
func startFraisier(ctx context.Context, bin string, w *work, dir string, b *bodies) (*fraisier, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg, err := w.writeConfig(dir, addr)
	if err != nil {
		return nil, err
	}
	if w.grown != "" {
		if err := copyFile(w.grown, filepath.Join(dir, "state.db")); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, bin, "--config", cfg, "serve")
	cmd.Env, cmd.Dir = w.env, dir
	c, err := startChild(cmd, filepath.Join(dir, "serve.log"), "http://"+addr+"/ready")
	if err != nil {
		return nil, err
	}
	if err := prime(ctx, addr, b, w.shas[len(w.shas)-1], w.held); err != nil {
		c.stop(10 * time.Second)
		return nil, err
	}
	return &fraisier{child: c, addr: addr}, nil
}

// prime delivers the push of main's tip, the one commit a queued push can
// deploy (it must be the pushed branch's tip), and with a held queue waits
// until its deployment runs: the load's pushes then each replace the
// request waiting behind it.
func prime(ctx context.Context, addr string, b *bodies, tip string, held bool) error {
	head, body := b.request(b.signer(), 0, tip)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("prime: %w", err)
	}
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok {
			req.Header.Set(string(k), string(v))
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("prime: push main's tip: %w", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("prime: push main's tip: %d %s", resp.StatusCode, answer)
	}
	if !held {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/deployments?status=running")
		if err != nil {
			return fmt.Errorf("prime: %w", err)
		}
		var running struct {
			Deployments []json.RawMessage `json:"deployments"`
		}
		err = json.NewDecoder(resp.Body).Decode(&running)
		resp.Body.Close()
		switch {
		case err == nil && len(running.Deployments) > 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("prime: the deployment of main's tip is not running after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readState counts what fraisier recorded, once it has stopped: the rows
// after those of the grown history.
func (m *measured) readState(ctx context.Context, path string, w *work) error {
	// Not read-only: the database of an older binary (-against) is
	// migrated to this program's schema first. Nothing uses it after.
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM tb_webhook_event WHERE id > ?", w.grownEvents).Scan(&m.recorded); err != nil {
		return fmt.Errorf("count webhook events: %w", err)
	}
	group := func(q string, after int64) (string, error) {
		rows, err := db.SQL().QueryContext(ctx, q, after)
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
	if m.outcomes, err = group("SELECT outcome, count(*) FROM tb_webhook_event WHERE id > ? GROUP BY outcome ORDER BY outcome", w.grownEvents); err != nil {
		return err
	}
	m.deploys, err = group("SELECT status, count(*) FROM tb_deployment WHERE id > ? GROUP BY status ORDER BY status", w.grownDeployments)
	return err
}
