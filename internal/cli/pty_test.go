package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// hostileText is what the hostile parts of these tests write: a window
// title, then the cursor moved up, the line erased and a carriage return,
// to print a fake outcome over the real one.
const hostileText = "\x1b]0;pwned\a\x1b[1A\x1b[2K\rdeployment 1: succeeded"

// hostilePrintf is hostileText as a printf format in a shell script.
var hostilePrintf = strings.NewReplacer("\x1b", `\033`, "\a", `\007`, "\r", `\r`).Replace(hostileText)

// hostileInstall is an install step that writes hostileText to the
// operator's terminal; it fails, so that its last line also reaches the
// step's detail, the deployment's error and the progress.
var hostileInstall = "printf 'npm ok\\n" + hostilePrintf + "\\n'\nexit 1\n"

// hostileAlembic stands in for the release's python running alembic: its
// history names a pending migration with hostileText, and with FAIL set it
// fails with hostileText as its last line, which a plan quotes.
var hostileAlembic = `#!/bin/sh
if [ -n "$FAIL" ]; then printf 'Traceback\n` + hostilePrintf + `\n'; exit 1; fi
for last; do :; done
if [ "$last" = history ]; then printf '<base> -> a1b2c3 (head), add items ` + hostilePrintf + `\n'; fi
`

// ptyFixture is fraisier set up with one fraise whose production install
// is hostile; staging and qa use hostileAlembic (qa failing) for --plan.
type ptyFixture struct {
	bin, root, state string
	repo             *testenv.Origin
	env              []string
}

func newPTYFixture(t *testing.T) *ptyFixture {
	t.Helper()
	bin, err := exec.LookPath("fraisier")
	if err != nil {
		t.Fatalf("fraisier is not on PATH (testscript.Main puts it there): %v", err)
	}
	root := t.TempDir()
	f := &ptyFixture{bin: bin, root: root, repo: testenv.NewOrigin(t, root), state: filepath.Join(root, "state", "fraisier.db")}
	origin := f.repo.Dir
	python := filepath.Join(root, "python")
	if err := os.WriteFile(python, []byte(hostileAlembic), 0o755); err != nil {
		t.Fatal(err)
	}
	f.repo.WriteMode("install.sh", hostileInstall, 0o755)
	f.repo.Commit("v1")
	cfg := filepath.Join(root, "fraises.yaml")
	var envs strings.Builder
	for _, name := range []string{"production", "staging", "qa"} {
		fmt.Fprintf(&envs, `      %s:
        branch: main
        git_repo: %s
        app_path: %s
        install: {command: [sh, install.sh]}
`, name, origin, filepath.Join(root, "srv", name))
		if name != "production" {
			// A plan looks at app_path but makes none.
			if err := os.MkdirAll(filepath.Join(root, "srv", name), 0o755); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&envs, "        auto_deploy: false\n        database: {tool: alembic, python: %s, url: \"sqlite:////%s\", env: {FAIL: %q}}\n",
				python, filepath.Join(root, name+".db"), map[bool]string{true: "1"}[name == "qa"])
		}
	}
	if err := os.WriteFile(cfg, []byte("fraises:\n  hello:\n    type: api\n    environments:\n"+envs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Colour on, as an operator's terminal has it: show paints statuses.
	f.env = slices.DeleteFunc(testenv.GitEnv(), func(kv string) bool { return strings.HasPrefix(kv, "NO_COLOR=") })
	f.env = append(f.env, "HOME="+root, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE="+f.state, "TERM=xterm")
	return f
}

// run runs fraisier with stdout on a terminal (tty) or a pipe; only
// deploy may fail.
func (f *ptyFixture) run(t *testing.T, tty bool, args ...string) string {
	t.Helper()
	out, code := runFraisier(t, f.bin, f.env, tty, args...)
	if code != 0 && (args[0] != "deploy" || slices.Contains(args, "--plan")) {
		t.Fatalf("fraisier %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

var (
	// Our own colours, which show paints statuses with on a terminal.
	ourColours = regexp.MustCompile(`\x1b\[(0|3[1-49])m`)
	controls   = regexp.MustCompile(`[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}]`)
)

// onTerminal runs fraisier on a terminal and checks what reached it: no
// control character but ours, no line of the hostile text's that reads as
// fraisier's own, and shown, proof that the hostile text was there.
func (f *ptyFixture) onTerminal(t *testing.T, shown string, args ...string) {
	t.Helper()
	out := f.run(t, true, args...)
	name := "fraisier " + strings.Join(args, " ")
	if c := controls.FindString(ourColours.ReplaceAllString(out, "")); c != "" {
		t.Errorf("%s wrote %q to the terminal:\n%q", name, c, out)
	}
	if !strings.Contains(out, shown) {
		t.Errorf("%s did not show %q at all:\n%s", name, shown, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "deployment 1: succeeded") {
			t.Errorf("%s printed the hostile text's fake outcome as its own:\n%s", name, out)
		}
	}
}

// TestTerminalEscapesFiltered runs fraisier deploy, logs and show with
// stdout on a real pseudo-terminal and a deployment whose install prints
// escape sequences: none reaches the terminal, and no line the deployed
// code printed passes for fraisier's own. show --json on the same
// terminal, and logs into a pipe, keep the output exact.
func TestTerminalEscapesFiltered(t *testing.T) {
	f := newPTYFixture(t)
	for _, args := range [][]string{{"deploy", "hello", "production"}, {"logs", "1"}, {"show", "1"}} {
		f.onTerminal(t, "pwned", args...)
	}

	// JSON is exact, on a terminal too: the output as the install wrote it.
	var shown struct {
		Deployment struct{ Error string } `json:"deployment"`
		Steps      []struct{ Name, Output string }
	}
	if err := json.Unmarshal([]byte(f.run(t, true, "show", "1", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	var install string
	for _, s := range shown.Steps {
		if s.Name == "install" {
			install = s.Output
		}
	}
	if want := "npm ok\n\x1b]0;pwned\a\x1b[1A\x1b[2K\rdeployment 1: succeeded\n"; install != want {
		t.Errorf("show --json: install output %q, want %q", install, want)
	}
	if !strings.Contains(shown.Deployment.Error, "\x1b[2K\rdeployment 1: succeeded") {
		t.Errorf("show --json: error %q lost the install's last line as written", shown.Deployment.Error)
	}
	// Into a pipe, logs keeps what was written.
	if out := f.run(t, false, "logs", "1"); !strings.Contains(out, "\x1b]0;pwned\a") {
		t.Errorf("logs into a pipe changed the output:\n%q", out)
	}
}

// TestTerminalTablesFiltered: history (a deployment's error, the install's
// last line), webhooks (what a delivery carried and the reason recorded
// for it) and deploy --plan (commit subjects and authors from the
// repository, a pending migration's name and a migration tool's failure
// from its output) reach a terminal filtered; their JSON stays exact.
func TestTerminalTablesFiltered(t *testing.T) {
	f := newPTYFixture(t)
	f.run(t, false, "deploy", "hello", "production")
	// A commit whose subject and author write to the terminal.
	f.repo.Git("commit", "-q", "--allow-empty", "-m", "fix "+hostileText,
		"--author", "Mallory\x1b]0;owned\a\u009b2J <m@example.com>")
	f.repo.Git("push", "-q", "origin", "HEAD:main")
	// A delivery as the server records it, with what its sender chose.
	ctx := t.Context()
	db, err := store.Open(ctx, store.Options{Path: f.state})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = db.RecordWebhook(ctx, store.WebhookEvent{Forge: "gitea", DeliveryID: "d-1", EventType: "push\u009b2J",
		Repository: "acme/\x1b]0;pwned\a", Ref: "refs/heads/\x1b[2J", Outcome: store.OutcomeIgnored,
		Reason: hostileText + " because"})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	f.onTerminal(t, "pwned", "history")
	f.onTerminal(t, "pwned", "webhooks")
	f.onTerminal(t, "owned", "deploy", "hello", "staging", "--plan")
	f.onTerminal(t, "pwned", "deploy", "hello", "qa", "--plan")

	var plan struct {
		Commits []struct{ Subject, Author string }
		Pending []string `json:"pending_migrations"`
	}
	if err := json.Unmarshal([]byte(f.run(t, true, "deploy", "hello", "staging", "--plan", "--json")), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Commits) == 0 || !strings.Contains(plan.Commits[0].Author, "\x1b]0;owned\a") ||
		len(plan.Pending) != 1 || !strings.Contains(plan.Pending[0], "\x1b[2K\rdeployment 1") {
		t.Errorf("deploy --plan --json is not exact: commits %q, pending %q", plan.Commits, plan.Pending)
	}
	var hooks struct{ Webhooks []struct{ Reason string } }
	if err := json.Unmarshal([]byte(f.run(t, true, "webhooks", "--json")), &hooks); err != nil {
		t.Fatal(err)
	}
	if len(hooks.Webhooks) != 1 || hooks.Webhooks[0].Reason != hostileText+" because" {
		t.Errorf("webhooks --json is not exact: %q", hooks.Webhooks)
	}
}

// runFraisier runs fraisier with stdout on a new pseudo-terminal (tty) or
// a pipe, stderr into the same text, and returns what it wrote and its
// exit code.
func runFraisier(t *testing.T, bin string, env []string, tty bool, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	if tty {
		master, slave := openPTY(t)
		cmd.Stdout = slave
		go func() {
			defer close(done)
			// The master reads EIO once the last holder of the slave is gone.
			io.Copy(&out, master)
		}()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
	} else {
		cmd.Stdout = &out
		close(done)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	err := cmd.Wait()
	<-done
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String() + stderr.String(), cmd.ProcessState.ExitCode()
}

// openPTY opens a pseudo-terminal pair whose output is passed as written
// (no newline turned into CR LF), so that what the test reads from the
// master is what fraisier wrote.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testenv.Unavailable(t, "no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if err := ioctl(master.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatalf("unlock pseudo-terminal: %v", err)
	}
	var n uint32
	if err := ioctl(master.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pseudo-terminal: %v", err)
	}
	var tio syscall.Termios
	if err := ioctl(slave.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("terminal attributes: %v", err)
	}
	tio.Oflag &^= syscall.OPOST
	if err := ioctl(slave.Fd(), syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("terminal attributes: %v", err)
	}
	return master, slave
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
