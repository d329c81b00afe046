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

	"github.com/fraiseql/fraisier/internal/testenv"
)

// hostileInstall is an install step that writes to the operator's
// terminal: a window title, then the cursor moved up, the line erased and
// a carriage return, to print a fake outcome over the real one; it fails,
// so that its last line also reaches the step's detail, the deployment's
// error and the progress.
const hostileInstall = `printf 'npm ok\n\033]0;pwned\007\033[1A\033[2K\rdeployment 1: succeeded\n'
exit 1
`

// TestTerminalEscapesFiltered runs fraisier deploy, logs and show with
// stdout on a real pseudo-terminal and a deployment whose install prints
// escape sequences: none reaches the terminal, and no line the deployed
// code printed passes for fraisier's own. show --json on the same
// terminal, and logs into a pipe, keep the output exact.
func TestTerminalEscapesFiltered(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Unavailable(t, "git not installed")
	}
	bin, err := exec.LookPath("fraisier")
	if err != nil {
		t.Fatalf("fraisier is not on PATH (testscript.Main puts it there): %v", err)
	}
	root := t.TempDir()
	origin, work := filepath.Join(root, "origin.git"), filepath.Join(root, "work")
	testenv.Git(t, root, "init", "-q", "--bare", "-b", "main", origin)
	testenv.Git(t, root, "clone", "-q", origin, work)
	if err := os.WriteFile(filepath.Join(work, "install.sh"), []byte(hostileInstall), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, work, "add", "-A")
	testenv.Git(t, work, "commit", "-q", "-m", "v1")
	testenv.Git(t, work, "push", "-q", "origin", "HEAD:main")
	cfg := filepath.Join(root, "fraises.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        install: {command: [sh, install.sh]}
`, origin, filepath.Join(root, "srv", "hello"))), 0o644); err != nil {
		t.Fatal(err)
	}
	// Colour on, as an operator's terminal has it: show paints statuses.
	env := slices.DeleteFunc(testenv.GitEnv(), func(kv string) bool { return strings.HasPrefix(kv, "NO_COLOR=") })
	env = append(env, "HOME="+root, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE="+filepath.Join(root, "state", "fraisier.db"), "TERM=xterm")

	run := func(tty bool, args ...string) string {
		t.Helper()
		out, code := runFraisier(t, bin, env, tty, args...)
		if code != 0 && args[0] != "deploy" {
			t.Fatalf("fraisier %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	// Our own colours, which show paints statuses with on a terminal.
	ours := regexp.MustCompile(`\x1b\[(0|3[1-49])m`)
	controls := regexp.MustCompile(`[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}]`)
	for _, args := range [][]string{{"deploy", "hello", "production"}, {"logs", "1"}, {"show", "1"}} {
		out := run(true, args...)
		name := "fraisier " + strings.Join(args, " ")
		if c := controls.FindString(ours.ReplaceAllString(out, "")); c != "" {
			t.Errorf("%s wrote %q to the terminal:\n%q", name, c, out)
		}
		if !strings.Contains(out, "pwned") {
			t.Errorf("%s did not show the step's output at all:\n%s", name, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "deployment 1: succeeded") {
				t.Errorf("%s printed the deployed code's fake outcome as its own:\n%s", name, out)
			}
		}
	}

	// JSON is exact, on a terminal too: the output as the install wrote it.
	var shown struct {
		Deployment struct{ Error string } `json:"deployment"`
		Steps      []struct{ Name, Output string }
	}
	if err := json.Unmarshal([]byte(run(true, "show", "1", "--json")), &shown); err != nil {
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
	if out := run(false, "logs", "1"); !strings.Contains(out, "\x1b]0;pwned\a") {
		t.Errorf("logs into a pipe changed the output:\n%q", out)
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
