package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// liveResult is push-to-live, round by round: fraisier's from the signed
// push reaching serve to the new commit answering, and the floor's from
// the start of the same work by hand to the same answer.
type liveResult struct {
	fraisier, floor []time.Duration
}

// pushToLive runs fraisier serve and measures rounds pushes, after one
// unmeasured round (first clone, first start on both sides).
func (w *world) pushToLive(rounds int) (liveResult, error) {
	var res liveResult
	serve := exec.CommandContext(w.ctx, w.bin, "serve")
	serve.Dir, serve.Env = w.root, w.env
	if err := serve.Start(); err != nil {
		return res, fmt.Errorf("start fraisier serve: %w", err)
	}
	defer func() { _ = serve.Process.Signal(syscall.SIGTERM); _ = serve.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", w.serve)
	if !waitFor(30*time.Second, func() bool { return status(base+"/ready") == http.StatusOK }) {
		return res, fmt.Errorf("fraisier serve not ready on %s after 30 s", base)
	}
	before := ""
	for i := 0; i <= rounds; i++ {
		version, sha, err := w.push()
		if err != nil {
			return res, err
		}
		var df, dh time.Duration
		byFraisier := func() (err error) {
			df, err = w.liveByFraisier(base, before, sha, version, i)
			return err
		}
		byHand := func() (err error) {
			dh, err = w.liveByHand(version)
			return err
		}
		// Who goes first alternates: the second runs while the first's
		// service is still settling, and neither side should always pay
		// for that.
		first, second := byHand, byFraisier
		if i%2 == 1 {
			first, second = byFraisier, byHand
		}
		if err := first(); err != nil {
			return res, fmt.Errorf("push-to-live round %d: %w", i, err)
		}
		if err := second(); err != nil {
			return res, fmt.Errorf("push-to-live round %d: %w", i, err)
		}
		before = sha
		if i > 0 {
			res.fraisier, res.floor = append(res.fraisier, df), append(res.floor, dh)
		}
	}
	return res, nil
}

// liveByFraisier sends the GitHub push of sha to serve and returns how
// long until the live service answers version.
func (w *world) liveByFraisier(base, before, sha, version string, n int) (time.Duration, error) {
	if before == "" {
		before = "0000000000000000000000000000000000000000"
	}
	body := fmt.Appendf(nil, `{"ref":"refs/heads/main","before":%q,"after":%q,"created":false,"deleted":false,"forced":false,`+
		`"repository":{"id":186853002,"name":"live","full_name":"acme/live","private":true,"owner":{"login":"acme","name":"acme"},`+
		`"html_url":"https://github.com/acme/live","clone_url":"https://github.com/acme/live.git","default_branch":"main"},`+
		`"pusher":{"name":"b","email":"b@example.com"},"sender":{"login":"b","id":5031067,"type":"User"},`+
		`"head_commit":{"id":%q,"message":%q,"timestamp":"2026-12-07T06:00:00Z"},"commits":[{"id":%q,"message":%q}]}`,
		before, sha, sha, version, sha, version)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, base+"/webhook/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/zdbench")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", deliveryID())
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send the push of %s: %w", version, err)
	}
	said, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("serve refused the push of %s: %s %s", version, resp.Status, said)
	}
	if !waitFor(2*time.Minute, func() bool { return answer(w.live.url()) == version }) {
		return 0, fmt.Errorf("%s never answered %s after its push (serve said %s)", w.live.url(), version, bytes.TrimSpace(said))
	}
	return time.Since(start), nil
}

// liveByHand runs bench/deploy-by-hand.sh (fetch, release from the
// commit, switch, restart, poll the health URL) and returns how long
// until the service answers version.
func (w *world) liveByHand(version string) (time.Duration, error) {
	start := time.Now()
	if err := w.sh(w.root, w.script, w.origin, w.byHand.app, w.byHand.unit, w.byHand.url()+"/health"); err != nil {
		return 0, err
	}
	if !waitFor(10*time.Second, func() bool { return answer(w.byHand.url()) == version }) {
		return 0, fmt.Errorf("%s never answered %s after deploy-by-hand.sh", w.byHand.url(), version)
	}
	return time.Since(start), nil
}

func status(url string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// deliveryID is a fresh GitHub delivery id (a UUID).
func deliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
