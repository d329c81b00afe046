package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// client speaks to fraisier serve's API: deploys with the deploy token,
// reads with the read token.
type client struct {
	base, read, deployToken string
	http                    http.Client
}

func (c *client) waitReady(limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.http.Get(c.base + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("fraisier serve not ready after %s", limit)
}

func (c *client) do(method, path, token string, body []byte, into any) error {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, into)
}

// deploy asks serve to deploy main and returns the deployment's id.
func (c *client) deploy() (int64, error) {
	var a struct {
		ID int64 `json:"deployment_id"`
	}
	err := c.do(http.MethodPost, "/api/deploy", c.deployToken, []byte(`{"fraise":"hello","environment":"production"}`), &a)
	return a.ID, err
}

// waitFinished waits for deployment id to end, and returns its duration
// as recorded; an outcome other than success is an error.
func (c *client) waitFinished(id int64, limit time.Duration) (time.Duration, error) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var a struct {
			Deployment struct {
				Status     string  `json:"status"`
				FinishedAt *string `json:"finished_at"`
				DurationMS int64   `json:"duration_ms"`
				Error      string  `json:"error"`
			} `json:"deployment"`
		}
		if err := c.do(http.MethodGet, fmt.Sprintf("/api/deployments/%d", id), c.read, nil, &a); err != nil {
			return 0, err
		}
		if d := a.Deployment; d.FinishedAt != nil {
			if d.Status != "succeeded" {
				return 0, fmt.Errorf("deployment %d %s: %s", id, d.Status, d.Error)
			}
			return time.Duration(d.DurationMS) * time.Millisecond, nil
		}
	}
	return 0, fmt.Errorf("deployment %d still running after %s", id, limit)
}

// follow reads deployment id's live log to its end, checking that the
// install's lines arrive in order, each once. When measure is set it
// returns the delay of each line printed after the stream opened.
func (c *client) follow(id int64, measure bool) ([]time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/deployments/%d/log", c.base, id), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.read)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET log of %d: %d", id, resp.StatusCode)
	}
	opened := time.Now()
	var delays []time.Duration
	next := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		text := sc.Text()
		if text == "event: end" {
			return delays, nil
		}
		n, stamp, ok := stampedLine(text)
		if !ok {
			continue
		}
		arrived := time.Now()
		if n != next {
			return nil, fmt.Errorf("deployment %d: line %d arrived where line %d was due", id, n, next)
		}
		next++
		if measure && stamp.After(opened) {
			delays = append(delays, arrived.Sub(stamp))
		}
	}
	return nil, fmt.Errorf("deployment %d: the log ended without its end event: %v", id, sc.Err())
}

// stampedLine parses "data: line N at SECONDS.MICROS", as the install
// script prints it.
func stampedLine(text string) (n int, stamp time.Time, ok bool) {
	rest, found := strings.CutPrefix(text, "data: line ")
	if !found {
		return 0, time.Time{}, false
	}
	num, at, found := strings.Cut(rest, " at ")
	if !found {
		return 0, time.Time{}, false
	}
	sec, micro, found := strings.Cut(at, ".")
	n, err1 := strconv.Atoi(num)
	s, err2 := strconv.ParseInt(sec, 10, 64)
	us, err3 := strconv.ParseInt(micro, 10, 64)
	if !found || err1 != nil || err2 != nil || err3 != nil {
		return 0, time.Time{}, false
	}
	return n, time.Unix(s, us*1000), true
}
