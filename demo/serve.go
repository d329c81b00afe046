package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// demoSecret signs the demo's webhook; fraises.yaml reads it from the
// environment, as a real one would.
const demoSecret = "demo-webhook-secret"

// serve shows fraisier serve: a push to the origin, the signed GitHub
// webhook that announces it, and the deployment that follows, recorded and
// linked to the webhook.
func (d *demo) serve() error {
	d.say("fraisier serve: a signed GitHub push deploys v4")
	fmt.Printf("\n%s$ fraisier serve --log-format text &%s\n", d.bold, d.reset)
	srv := exec.CommandContext(d.ctx, d.bin, "serve", "--log-format", "text")
	srv.Env, srv.Dir = d.env, d.root
	srv.Stdout = os.Stdout
	srv.Stderr = &prefixWriter{prefix: "  serve| ", w: os.Stdout}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start fraisier serve: %w", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}
	defer stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", d.serverPort)
	if err := waitHTTP(d.ctx, base+"/ready", 15*time.Second); err != nil {
		return fmt.Errorf("fraisier serve never became ready: %w", err)
	}

	d.push("v4", "healthy")
	if err := d.sendPush(base, d.head()); err != nil {
		return err
	}

	// The deployment runs in the server; the service answers v4 once done.
	deadline := time.Now().Add(60 * time.Second)
	for !d.serving("v4") {
		if time.Now().After(deadline) {
			return fmt.Errorf("v4 was not deployed within a minute of the webhook")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the record of the finish land before reading it
	d.curl()

	d.say("the webhook and the deployment it caused, linked")
	d.fraisier(0, "webhooks")
	d.fraisier(0, "history", "--limit", "3")
	return d.dashboard(base, d.head())
}

// sendPush posts the signed GitHub push webhook for commit sha on main,
// as GitHub would, and wants it accepted.
func (d *demo) sendPush(base, sha string) error {
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": strings.Repeat("0", 40), "after": sha, "deleted": false,
		"repository": map[string]any{"full_name": "demo/hello", "clone_url": "https://example.invalid/demo/hello.git"},
		"pusher":     map[string]any{"name": "demo"}, "sender": map[string]any{"login": "demo"},
		"head_commit": map[string]any{"id": sha, "message": "v4 (healthy)"},
	})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(demoSecret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, base+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "demo-delivery-1")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	fmt.Printf("\n%s$ POST %s/webhook  (X-GitHub-Event: push, signed with the configured secret)%s\n", d.bold, base, d.reset)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("send the webhook: %w", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("  → %d %s\n", resp.StatusCode, strings.TrimSpace(string(answer)))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook answered %d, expected 202", resp.StatusCode)
	}
	return nil
}

func (d *demo) head() string {
	cmd := exec.CommandContext(d.ctx, "git", "rev-parse", "HEAD")
	cmd.Env, cmd.Dir = d.env, d.work
	out, err := cmd.Output()
	if err != nil {
		d.failed = true
		return ""
	}
	return strings.TrimSpace(string(out))
}

// serving reports whether the service answers with version.
func (d *demo) serving(version string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", d.port))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.Contains(string(b), version)
}

func waitHTTP(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// prefixWriter prefixes each line, so the server's log stands apart from
// the commands' output.
type prefixWriter struct {
	prefix string
	w      io.Writer
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
}
