package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// serveBaseline is the baseline: a minimal Go webhook handler that reads
// the body, checks its HMAC and decodes the JSON it needs, and records
// nothing. It is what any Go webhook receiver must at least do.
func serveBaseline(addr string, secret []byte) error {
	if len(secret) == 0 {
		return fmt.Errorf("no secret in WEBHOOKBENCH_SECRET")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: baselineHandler(secret), ReadHeaderTimeout: 5 * time.Second}
	if err := hs.Serve(l); err != nil {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	return nil
}

func baselineHandler(secret []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read the body", http.StatusBadRequest)
			return
		}
		sig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		got, err := hex.DecodeString(sig)
		if !ok || err != nil {
			http.Error(w, "no signature", http.StatusUnauthorized)
			return
		}
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if !hmac.Equal(got, m.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var push struct {
			Ref        string `json:"ref"`
			After      string `json:"after"`
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		}
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&push); err != nil || push.After == "" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "{\"outcome\":\"accepted\",\"delivery_id\":%q}\n", r.Header.Get("X-GitHub-Delivery"))
	})
	return mux
}
