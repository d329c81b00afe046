package systemd

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "", want: time.Time{}},
		{in: "n/a", want: time.Time{}},
		{in: "Wed 2026-11-25 20:11:55 UTC", want: time.Date(2026, 11, 25, 20, 11, 55, 0, time.UTC)},
		{in: "Wed 2026-11-25 20:11:55.303992 UTC", want: time.Date(2026, 11, 25, 20, 11, 55, 303992000, time.UTC)},
		// Only the weekday's position matters, not its language.
		{in: "Mi 2026-11-25 20:11:55 UTC", want: time.Date(2026, 11, 25, 20, 11, 55, 0, time.UTC)},
		{in: "Thu 2026-11-26 00:00:00 CET", wantErr: true},
		{in: "@1795637260", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseTimestamp(tt.in)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseCalendar(t *testing.T) {
	tests := []struct {
		name     string
		out      string
		wantNorm string
		wantNext time.Time
		wantErr  bool
	}{
		{
			name: "local zone is UTC",
			out: "  Original form: *:*:0/5\nNormalized form: *-*-* *:*:00/5\n    Next elapse: Wed 2026-11-25 20:12:10 UTC\n" +
				"       From now: 2s left\n       Iter. #2: Wed 2026-11-25 20:12:15 UTC\n",
			wantNorm: "*-*-* *:*:00/5",
			wantNext: time.Date(2026, 11, 25, 20, 12, 10, 0, time.UTC),
		},
		{
			name: "another local zone",
			out: "  Original form: daily\nNormalized form: *-*-* 00:00:00\n    Next elapse: Thu 2026-11-26 00:00:00 CET\n" +
				"       (in UTC): Wed 2026-11-25 23:00:00 UTC\n       From now: 2h 47min left\n",
			wantNorm: "*-*-* 00:00:00",
			wantNext: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
		},
		{
			name:     "never",
			out:      "  Original form: 2001-01-01\nNormalized form: 2001-01-01 00:00:00\n    Next elapse: never\n",
			wantNorm: "2001-01-01 00:00:00",
		},
		{name: "garbage", out: "what\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			norm, next, err := parseCalendar(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if norm != tt.wantNorm || !next.Equal(tt.wantNext) {
				t.Errorf("= %q %v, want %q %v", norm, next, tt.wantNorm, tt.wantNext)
			}
		})
	}
}

func TestParseShow(t *testing.T) {
	got := parseShow("ActiveState=active\nEnvironment=A=1 B=2\nEmpty=\nnot a property\n")
	want := map[string]string{"ActiveState": "active", "Environment": "A=1 B=2", "Empty": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseShow (-want +got):\n%s", diff)
	}
}

// TestWaitDecision covers the states WaitActive must not call running.
func TestWaitDecision(t *testing.T) {
	svc := func(active, sub string) UnitStatus {
		return UnitStatus{Unit: "web.service", LoadState: "loaded", ActiveState: active, SubState: sub, Type: "simple"}
	}
	tests := []struct {
		name        string
		st          UnitStatus
		seenRunning bool
		wantRunning bool
		wantFail    bool
	}{
		{name: "running", st: svc("active", "running"), wantRunning: true},
		{name: "starting", st: svc("activating", "start")},
		{name: "start-pre", st: svc("activating", "start-pre")},
		{name: "crashed, restart pending", st: svc("activating", "auto-restart"), wantFail: true},
		{name: "failed", st: svc("failed", "failed"), wantFail: true},
		{name: "exited", st: svc("inactive", "dead"), wantFail: true},
		{name: "stopping", st: svc("deactivating", "stop-sigterm"), wantFail: true},
		{name: "remain after exit", st: svc("active", "exited"), wantFail: true},
		{name: "oneshot done", st: UnitStatus{Unit: "job.service", LoadState: "loaded", ActiveState: "active", SubState: "exited", Type: "oneshot"}, wantRunning: true},
		{name: "back to activating after running", st: svc("activating", "start"), seenRunning: true, wantFail: true},
		{name: "reloading", st: svc("reloading", "reload"), seenRunning: true},
		{name: "not found", st: UnitStatus{Unit: "web.service", LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}, wantFail: true},
		{name: "timer waiting", st: UnitStatus{Unit: "job.timer", LoadState: "loaded", ActiveState: "active", SubState: "waiting"}, wantRunning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := running(tt.st); got != tt.wantRunning {
				t.Errorf("running = %v, want %v", got, tt.wantRunning)
			}
			if reason := notRunning(tt.st, tt.seenRunning); (reason != "") != tt.wantFail {
				t.Errorf("notRunning = %q, want failure %v", reason, tt.wantFail)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	t.Setenv("HOME", "/home/u")
	tests := []struct {
		name    string
		opts    Options
		wantDir string
		wantErr bool
	}{
		{name: "system", opts: Options{Scope: ScopeSystem}, wantDir: "/etc/systemd/system"},
		{name: "user from process env", opts: Options{Scope: ScopeUser}, wantDir: "/xdg/systemd/user"},
		{name: "user from Env", opts: Options{Scope: ScopeUser, Env: []string{"XDG_CONFIG_HOME=/a", "XDG_CONFIG_HOME=/b"}}, wantDir: "/b/systemd/user"},
		{name: "relative XDG ignored", opts: Options{Scope: ScopeUser, Env: []string{"XDG_CONFIG_HOME=rel"}}, wantDir: "/home/u/.config/systemd/user"},
		{name: "explicit", opts: Options{Scope: ScopeUser, UnitDir: "/run/u"}, wantDir: "/run/u"},
		{name: "relative explicit", opts: Options{Scope: ScopeSystem, UnitDir: "units"}, wantErr: true},
		{name: "no scope", opts: Options{}, wantErr: true},
		{name: "bad scope", opts: Options{Scope: "session"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && m.UnitDir() != filepath.Clean(tt.wantDir) {
				t.Errorf("UnitDir = %s, want %s", m.UnitDir(), tt.wantDir)
			}
		})
	}
}
