package systemd

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

func requireAnalyze(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testenv.Unavailable(t, "systemd-analyze: %v", err)
	}
}

func TestValidateCalendar(t *testing.T) {
	requireAnalyze(t)
	m, err := New(Options{Scope: ScopeSystem})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr     string
		wantNorm string
		// wantWithin: the next elapse is in (now, now+wantWithin]; zero
		// means it never elapses.
		wantWithin time.Duration
		wantErr    bool
	}{
		{expr: "*:*:0/5", wantNorm: "*-*-* *:*:00/5", wantWithin: 6 * time.Second},
		{expr: "daily", wantNorm: "*-*-* 00:00:00", wantWithin: 25 * time.Hour},
		{expr: "Mon..Fri 09:30", wantNorm: "Mon..Fri *-*-* 09:30:00", wantWithin: 4 * 24 * time.Hour},
		{expr: "*-*-* 03:00:00 UTC", wantNorm: "*-*-* 03:00:00 UTC", wantWithin: 25 * time.Hour},
		{expr: "2001-01-01", wantNorm: "2001-01-01 00:00:00"},
		{expr: "bogus", wantErr: true},
		{expr: "*-*-* 25:00", wantErr: true},
		{expr: "", wantErr: true},
		{expr: "daily\nOnCalendar=hourly", wantErr: true},
		{expr: "--help", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			before := time.Now()
			norm, next, err := m.ValidateCalendar(context.Background(), tt.expr)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidCalendar) {
					t.Fatalf("ValidateCalendar = %q, %v, %v; want ErrInvalidCalendar", norm, next, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if norm != tt.wantNorm {
				t.Errorf("normalized %q, want %q", norm, tt.wantNorm)
			}
			switch {
			case tt.wantWithin == 0 && !next.IsZero():
				t.Errorf("next %s, want never", next)
			case tt.wantWithin > 0 && (!next.After(before.Add(-time.Second)) || next.After(before.Add(tt.wantWithin))):
				t.Errorf("next %s, want within %s of %s", next, tt.wantWithin, before)
			}
		})
	}
}

// TestVerifyGolden runs systemd-analyze verify on the golden renderings,
// so that what the render tests pin down is also what systemd accepts.
func TestVerifyGolden(t *testing.T) {
	requireAnalyze(t)
	for _, scope := range []Scope{ScopeSystem, ScopeUser} {
		t.Run(string(scope), func(t *testing.T) {
			dir := t.TempDir()
			m, err := New(Options{Scope: scope, UnitDir: dir, Env: []string{"XDG_RUNTIME_DIR=" + dir}})
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, j := range goldenJobs {
				for _, suffix := range []string{".service", ".timer"} {
					b, err := os.ReadFile(filepath.Join("testdata", j.Name+suffix))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := m.WriteUnit(j.Name+suffix, b); err != nil {
						t.Fatal(err)
					}
					paths = append(paths, filepath.Join(dir, j.Name+suffix))
				}
			}
			if err := m.VerifyUnits(context.Background(), paths...); err != nil {
				t.Errorf("VerifyUnits: %v", err)
			}
		})
	}
}

func TestVerifyFindsProblems(t *testing.T) {
	requireAnalyze(t)
	dir := t.TempDir()
	m, err := New(Options{Scope: ScopeSystem, UnitDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content, want string
	}{
		{"missing-binary.service", "[Service]\nExecStart=/nonexistent/bin/app\n", "/nonexistent/bin/app"},
		{"unknown-key.service", "[Service]\nExecStart=/bin/true\nExecStrat=/bin/true\n", "ExecStrat"},
		{"bad-calendar.timer", "[Timer]\nOnCalendar=bogus\n", "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.WriteUnit(tt.name, []byte(tt.content)); err != nil {
				t.Fatal(err)
			}
			err := m.VerifyUnits(context.Background(), filepath.Join(dir, tt.name))
			var ve *VerifyError
			if !errors.As(err, &ve) || !strings.Contains(ve.Output, tt.want) {
				t.Errorf("VerifyUnits = %v, want a *VerifyError mentioning %q", err, tt.want)
			}
		})
	}
	if err := m.VerifyUnits(context.Background(), "relative.service"); err == nil {
		t.Error("VerifyUnits accepted a relative path")
	}
}
