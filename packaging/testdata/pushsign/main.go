// Command pushsign is the forge in the booted package test: inside the
// machine, where only loopback exists, it posts a GitHub push signed with
// the secret file fraisier init wrote, and reads the app's answer.
//
//	pushsign push URL SECRET_FILE REPOSITORY BRANCH BEFORE AFTER
//	pushsign get URL
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pushsign:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	client := &http.Client{Timeout: 30 * time.Second}
	switch {
	case len(args) == 7 && args[0] == "push":
		return push(client, args[1], args[2], args[3], args[4], args[5], args[6])
	case len(args) == 2 && args[0] == "get":
		resp, err := client.Get(args[1])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, b)
		return nil
	}
	return fmt.Errorf("usage: pushsign push URL SECRET_FILE REPOSITORY BRANCH BEFORE AFTER | pushsign get URL")
}

func push(client *http.Client, url, secretFile, repo, branch, before, after string) error {
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		return err
	}
	secret = bytes.TrimSuffix(secret, []byte("\n"))
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after,
		"repository":  map[string]any{"full_name": "acme/shop", "clone_url": repo, "html_url": repo},
		"pusher":      map[string]any{"name": "dev"},
		"head_commit": map[string]any{"id": after, "message": "push " + after[:8]},
	})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("booted-%d", time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, b)
	return nil
}
