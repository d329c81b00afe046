package execx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name      string
		cmd       Cmd
		wantCode  int
		wantOut   string
		wantTrunc bool
		wantErr   func(error) bool
	}{
		{name: "success", cmd: Cmd{Argv: []string{"echo", "hello"}}, wantOut: "hello\n"},
		{name: "stderr captured", cmd: Cmd{Argv: []string{"sh", "-c", "echo oops >&2; exit 3"}}, wantCode: 3, wantOut: "oops\n",
			wantErr: func(err error) bool {
				var ee *ExitError
				return errors.As(err, &ee) && ee.Code == 3 && strings.HasSuffix(ee.Error(), ": oops")
			}},
		{name: "env added", cmd: Cmd{Argv: []string{"sh", "-c", "echo $FRAISIER_X"}, Env: []string{"FRAISIER_X=42"}}, wantOut: "42\n"},
		{name: "dir", cmd: Cmd{Argv: []string{"pwd"}, Dir: "/"}, wantOut: "/\n"},
		{name: "cap keeps the tail", cmd: Cmd{Argv: []string{"sh", "-c", "seq 1 1000"}, MaxOutput: 10}, wantOut: "\n999\n1000\n", wantTrunc: true},
		{name: "missing program", cmd: Cmd{Argv: []string{"/nonexistent/prog"}}, wantCode: -1,
			wantErr: func(err error) bool { return errors.Is(err, os.ErrNotExist) }},
		{name: "empty argv", cmd: Cmd{}, wantCode: -1, wantErr: func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), tt.cmd)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("Run error = %v, not the expected kind", err)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d", res.ExitCode, tt.wantCode)
			}
			if tt.wantOut != "" && string(res.Output) != tt.wantOut {
				t.Errorf("output %q, want %q", res.Output, tt.wantOut)
			}
			if res.Truncated != tt.wantTrunc {
				t.Errorf("truncated %v, want %v", res.Truncated, tt.wantTrunc)
			}
		})
	}
}

func TestLiveOutput(t *testing.T) {
	var live bytes.Buffer
	res, err := Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo one; echo two >&2"}, Output: &live})
	if err != nil {
		t.Fatal(err)
	}
	if live.String() != string(res.Output) || !strings.Contains(live.String(), "one") || !strings.Contains(live.String(), "two") {
		t.Errorf("live %q, captured %q", live.String(), res.Output)
	}
}

// TestTimeoutKillsTheGroup checks that a timeout kills the command and what
// it started, even a grandchild that ignores SIGTERM.
func TestTimeoutKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	_, err := Run(context.Background(), Cmd{
		Argv:    []string{"sh", "-c", `sh -c 'trap "" TERM; echo $$ > ` + pidFile + `; sleep 30' & wait`},
		Timeout: 300 * time.Millisecond,
		Grace:   200 * time.Millisecond,
	})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run returned after %s", d)
	}
	assertGone(t, pidFile)
}

func TestCancelKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := Run(ctx, Cmd{Argv: []string{"sh", "-c", `sleep 30 & echo $! > ` + pidFile + `; wait`}, Grace: 100 * time.Millisecond})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertGone(t, pidFile)
}

// TestStragglerDoesNotHang: a background child that keeps stdout open must
// not keep Run waiting once the command itself has exited.
func TestStragglerDoesNotHang(t *testing.T) {
	start := time.Now()
	_, err := Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "sleep 30 & echo started"}, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run waited %s for a straggler", d)
	}
}

func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	var pid int
	for i := 0; i < 50; i++ {
		b, err := os.ReadFile(pidFile)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			pid, _ = strconv.Atoi(string(bytes.TrimSpace(b)))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("child never wrote its pid")
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		// A zombie still answers kill 0; its state tells.
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("process %d outlived its group's kill", pid)
}

func TestQuoteArgv(t *testing.T) {
	got := QuoteArgv([]string{"git", "log", "a b", "$(rm -rf /)", ""})
	want := `git log "a b" "$(rm -rf /)" ""`
	if got != want {
		t.Errorf("QuoteArgv = %s, want %s", got, want)
	}
}

// TestCredential: a command given a credential runs as that user and group,
// still in its own process group.
func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		// testenv imports execx, so this test cannot use testenv.Unavailable.
		if os.Getenv("FRAISIER_TEST_STRICT") == "1" {
			t.Fatal("switching user needs root (FRAISIER_TEST_STRICT=1 forbids skipping)")
		}
		t.Skip("switching user needs root")
	}
	out, err := Output(context.Background(), Cmd{
		Argv:       []string{"sh", "-c", `echo "$(id -u) $(id -g) $(id -G)"; cut -d" " -f5 /proc/$$/stat; echo $$`},
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out)
	if len(lines) != 5 {
		t.Fatalf("output %q", out)
	}
	if ids := strings.Join(lines[:3], " "); ids != "65534 65534 65534" {
		t.Errorf("ran as uid gid groups %q, want 65534 65534 65534", ids)
	}
	if lines[3] != lines[4] {
		t.Errorf("process group %s, want its own (%s)", lines[3], lines[4])
	}
}
