package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/store"
)

func TestScrubString(t *testing.T) {
	url := "postgres://app:pw-0123456789@db/app"
	s := NewScrubber([]string{"pw-0123456789", url, "", "whsec-abcdefghijklmnop", "whsec-abcdefghijklmnop"})
	tests := []struct{ in, want string }{
		{"nothing secret here", "nothing secret here"},
		{"", ""},
		{"url " + url + " end", "url [redacted] end"},
		{"password pw-0123456789 alone", "password [redacted] alone"},
		{"twice whsec-abcdefghijklmnopwhsec-abcdefghijklmnop", "twice [redacted][redacted]"},
		{"a prefix whsec-abcdef is no secret", "a prefix whsec-abcdef is no secret"},
		{"at the end pw-0123456789", "at the end [redacted]"},
	}
	for _, tt := range tests {
		if got := s.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var none *Scrubber
	if got := none.String("pw-0123456789"); got != "pw-0123456789" {
		t.Errorf("a nil Scrubber changed %q", got)
	}
	if NewScrubber([]string{"", ""}) != nil {
		t.Error("no secrets should make a nil Scrubber")
	}
}

// TestScrubOverlappingSecrets: where secrets overlap, the longest found at
// a place wins, even when it begins with a shorter one and arrives in two
// writes.
func TestScrubOverlappingSecrets(t *testing.T) {
	s := NewScrubber([]string{"token-0123", "token-0123456789abcdef"})
	in := "x token-0123456789abcdef y token-0123 z"
	want := "x [redacted] y [redacted] z"
	if got := s.String(in); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	for cut := range len(in) + 1 {
		if got := writeInParts(s, in[:cut], in[cut:]); got != want {
			t.Errorf("split at %d: %q, want %q", cut, got, want)
		}
	}
}

// TestScrubWriterSplits: a secret split across writes, anywhere, even a
// byte at a time, is caught; what is held back is always shorter than the
// longest secret, and nothing is held that cannot begin one.
func TestScrubWriterSplits(t *testing.T) {
	secrets := []string{"sec-webhook-0123456789", "postgres://app:sec-db-pass@db/app", "sec-db-pass"}
	s := NewScrubber(secrets)
	in := "start sec-webhook-0123456789 then postgres://app:sec-db-pass@db/app, sec-db-pass, sec-web and s\n"
	want := s.String(in)
	if strings.Contains(want, "sec-webhook-0123456789") || strings.Contains(want, "sec-db-pass") {
		t.Fatalf("String left a secret: %q", want)
	}
	for cut := range len(in) + 1 {
		if got := writeInParts(s, in[:cut], in[cut:]); got != want {
			t.Errorf("split at %d: %q, want %q", cut, got, want)
		}
	}
	var out bytes.Buffer
	w := s.Writer(&out)
	longest := len(secrets[1])
	for i := range len(in) {
		w.Write([]byte{in[i]})
		if len(w.held) >= longest {
			t.Fatalf("after byte %d, %d bytes held back", i, len(w.held))
		}
	}
	w.Close()
	if out.String() != want {
		t.Errorf("a byte at a time: %q, want %q", out.String(), want)
	}

	// A progress line that cannot begin a secret goes out at once.
	out.Reset()
	w = s.Writer(&out)
	w.Write([]byte("→ install … "))
	if out.String() != "→ install … " {
		t.Errorf("held back %q from a line that begins no secret", "→ install … ")
	}
}

func writeInParts(s *Scrubber, parts ...string) string {
	var out bytes.Buffer
	w := s.Writer(&out)
	for _, p := range parts {
		w.Write([]byte(p))
	}
	w.Close()
	return out.String()
}

// TestRecorderScrubsSecrets: a step that prints a secret (split across
// writes, with a pause longer than the output's flush between), returns it
// in its detail, and fails with it in a tool's output, and a skipped step
// that gives it as its reason, leave it nowhere in the state database's
// files nor in the progress, and the error still says what it is.
func TestRecorderScrubsSecrets(t *testing.T) {
	ctx := context.Background()
	const secret = "sec-recorder-0123456789"
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "f", Environment: "e"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rec := &recorder{db: db, deploymentID: id, progress: &progress, now: time.Now, record: ctx, scrub: NewScrubber([]string{secret})}

	stepErr := rec.step(ctx, "install", 0, func(ctx context.Context, out io.Writer) (string, error) {
		io.WriteString(out, "token: "+secret[:7])
		time.Sleep(outputFlushAfter + 100*time.Millisecond)
		io.WriteString(out, secret[7:]+"\n")
		_, err := execx.Run(ctx, execx.Cmd{Argv: []string{"sh", "-c", `echo "connecting with $S"; exit 3`}, Env: []string{"S=" + secret}, Output: out})
		return "install with " + secret, err
	})
	var ee *execx.ExitError
	if stepErr == nil || strings.Contains(stepErr.Error(), secret) || !strings.Contains(stepErr.Error(), "exit status 3") || errors.As(stepErr, &ee) {
		t.Errorf("step error %v: want the failure, scrubbed, its tool output out of reach", stepErr)
	}
	if err := rec.skip("migrate", "no database at "+secret); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusFailed, Error: stepErr.Error()}); err != nil {
		t.Fatal(err)
	}

	steps, err := db.Steps(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || !strings.Contains(steps[0].Output, "token: "+Redacted) || !strings.Contains(steps[0].Output, "connecting with "+Redacted) ||
		!strings.Contains(steps[0].Detail, "install with "+Redacted) || steps[1].Detail != "no database at "+Redacted {
		t.Errorf("recorded steps %+v: want the secret replaced everywhere", steps)
	}
	if !strings.Contains(progress.String(), Redacted) || strings.Contains(progress.String(), secret) {
		t.Errorf("progress %q", progress.String())
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret", filepath.Base(f))
		}
	}
}

// TestScrubbedErrorKeepsIs: a scrubbed error still answers errors.Is for
// what it wrapped.
func TestScrubbedErrorKeepsIs(t *testing.T) {
	s := NewScrubber([]string{"sec-0123456789"})
	err := s.Error(errors.Join(execx.ErrTimeout, errors.New("while sec-0123456789 waited")))
	if !errors.Is(err, execx.ErrTimeout) || strings.Contains(err.Error(), "sec-0123456789") {
		t.Errorf("scrubbed error %v: want ErrTimeout kept and the secret gone", err)
	}
	plain := errors.New("nothing secret")
	if s.Error(plain) != plain {
		t.Error("an error holding no secret should be returned as it is")
	}
}
