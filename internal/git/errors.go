package git

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fraiseql/fraisier/internal/execx"
)

var (
	// ErrInvalid reports a ref, SHA or remote that failed validation; no
	// git process was started for it. It usually means bad input from a
	// webhook or a configuration file.
	ErrInvalid = errors.New("invalid")

	// ErrUnreachable reports that the remote could not be contacted or
	// read: it does not exist, the network or DNS failed, or it refused our
	// credentials. The error text carries the tail of git's stderr.
	ErrUnreachable = errors.New("remote unreachable")

	// ErrRefNotFound reports a branch, tag or commit that does not exist,
	// or an abbreviated SHA that matches more than one commit.
	ErrRefNotFound = errors.New("ref not found")

	// ErrSubmodules reports a tree that contains a gitlink.
	ErrSubmodules = errors.New("submodules are not supported yet")

	// ErrNotRepository reports a directory that is not the kind of git
	// repository the operation needs, and that fraisier will not overwrite.
	ErrNotRepository = errors.New("not a fraisier git repository")

	// ErrUntrusted reports a git directory that someone other than
	// fraisier's own user could have written, and whose config git would
	// therefore obey on their behalf.
	ErrUntrusted = errors.New("git directory not fraisier's own")
)

// commandError is a git command that exited non-zero. It unwraps to the
// *execx.ExitError, which holds git's full output.
type commandError struct {
	sub  string
	exit *execx.ExitError
}

func (e *commandError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.sub, e.exit.Code)
	if tail := stderrTail(e.exit.Output); tail != "" {
		msg += ": " + tail
	}
	return msg
}

func (e *commandError) Unwrap() error { return e.exit }

// unreachableSigns are what git (LC_ALL=C) says when it could not talk to
// or read from a remote, as opposed to failing locally.
var unreachableSigns = []string{
	"does not appear to be a git repository",
	"Could not read from remote repository",
	"unable to access",
	"Could not resolve host",
	"Connection refused",
	"Connection timed out",
	"No route to host",
	"Network is unreachable",
	"Authentication failed",
	"Host key verification failed",
	"The remote end hung up unexpectedly",
	"unable to connect",
}

// classifyRemote turns the failure of a command that talked to a remote
// into ErrUnreachable when git's output says so. Timeouts and
// cancellation stay what they are.
func classifyRemote(err error) error {
	return classify(err, ErrUnreachable, func(out string) bool {
		return containsAny(out, unreachableSigns) ||
			strings.Contains(out, "repository '") && strings.Contains(out, "' not found")
	})
}

// revisionSigns are what git says of a commit or tree it does not have.
var revisionSigns = []string{
	"bad object", "unknown revision", "Invalid revision range", "bad revision",
	"not a valid object name", "Not a valid object name", "Not a valid commit name",
	"failed to unpack tree object",
}

// classifyRevision turns git's complaints about a commit it does not have
// into ErrRefNotFound.
func classifyRevision(err error) error {
	return classify(err, ErrRefNotFound, func(out string) bool { return containsAny(out, revisionSigns) })
}

// classify wraps sentinel, with the tail of git's output, around a git
// command that exited non-zero saying what says recognises; any other
// error is returned as it is.
func classify(err, sentinel error, says func(out string) bool) error {
	var ee *execx.ExitError
	if errors.As(err, &ee) && says(ee.Output) {
		return fmt.Errorf("%w: %s", sentinel, stderrTail(ee.Output))
	}
	return err
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// stderrTail is the last few meaningful lines git printed, progress
// meters (carriage-return separated) dropped.
func stderrTail(out string) string {
	var lines []string
	for _, l := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" && !boilerplate(l) {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	s := strings.Join(lines, "; ")
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return s
}

// boilerplate are lines git adds to every remote failure; they would push
// the one line that says what happened out of the tail.
func boilerplate(line string) bool {
	return line == "Please make sure you have the correct access rights" ||
		line == "and the repository exists."
}
