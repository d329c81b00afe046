package git

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// Options tune the git processes of a repository.
type Options struct {
	// Timeout bounds each git process; zero means only ctx bounds it.
	Timeout time.Duration
	// Output, when set, receives the live output (progress included) of
	// the commands that talk to the remote.
	Output io.Writer
}

// runner runs git against one repository. The repository is always named
// explicitly, so that neither the working directory nor an inherited
// GIT_DIR decides which repository git touches.
type runner struct {
	gitDir   string
	workTree string // empty for a bare repository
	index    string // empty: the repository's own index
	opts     Options
}

// call is one git invocation.
type call struct {
	args []string
	// config are -c settings for this call only, after hardening's.
	config []string
	dir    string
	stdin  io.Reader
	// live sends the output to opts.Output as it comes.
	live bool
}

// hardening are the -c settings every git process gets. They keep the
// behaviour of fraisier independent of whatever a repository, a fetched
// tree or the user's global configuration would otherwise switch on.
func hardening() []string {
	return []string{
		// No hook of any repository ever runs: hooks are code, and the
		// repositories we touch are fed from remotes.
		"-c", "core.hooksPath=/dev/null",
		"-c", "core.fsmonitor=false",
		// Only the transports ValidateRemote accepts; never ext:: or fd::,
		// which run programs, even if an insteadOf rewrote a URL into one.
		"-c", "protocol.allow=never",
		"-c", "protocol.https.allow=always",
		"-c", "protocol.ssh.allow=always",
		"-c", "protocol.file.allow=always",
		"-c", "protocol.ext.allow=never",
		"-c", "protocol.fd.allow=never",
		"-c", "submodule.recurse=false",
		"-c", "fetch.recurseSubmodules=false",
		// A detached gc would outlive the process group execx kills.
		"-c", "gc.autoDetach=false",
		// Checked-out bytes are the blob's bytes (see attributesOverride).
		"-c", "core.autocrlf=false",
		"-c", "core.symlinks=true",
		// A release is the whole tree, whatever a global config says.
		"-c", "core.sparseCheckout=false",
		"-c", "core.warnAmbiguousRefs=false",
		"-c", "advice.detachedHead=false",
		"-c", "init.defaultBranch=main",
	}
}

// passEnv returns the variables of fraisier's environment git gets beyond
// execx's allowlist: how this host reaches remotes (an ssh agent or
// command, a proxy, a private certificate authority).
func passEnv() []string {
	return []string{
		"SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "GIT_SSH",
		"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
		"all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
	}
}

// env is what every git process gets on top of execx's allowlist and
// passEnv(). The variables that would redirect git elsewhere are set to the
// values we mean, whatever a caller's environment holds.
func (r runner) env() []string {
	env := []string{
		"LC_ALL=C", // the messages classifyRemote reads are English
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_PARAMETERS=",
		"GIT_CONFIG_COUNT=0",
		"GIT_TERMINAL_PROMPT=0",
		// Empty, not unset: git then asks no helper program and, with
		// terminal prompts off, fails instead of waiting for a password.
		"GIT_ASKPASS=",
		// ssh prompts on the terminal (host keys, passphrases) would stop
		// the process group in the background; make them fail instead.
		"SSH_ASKPASS=/bin/false",
		"SSH_ASKPASS_REQUIRE=force",
		"GIT_NO_REPLACE_OBJECTS=1",
		"GIT_NAMESPACE=",
		"GIT_ALTERNATE_OBJECT_DIRECTORIES=",
		"GIT_DIR=" + r.gitDir,
		"GIT_OBJECT_DIRECTORY=" + filepath.Join(r.gitDir, "objects"),
	}
	if r.workTree != "" {
		index := r.index
		if index == "" {
			index = filepath.Join(r.gitDir, "index")
		}
		env = append(env, "GIT_WORK_TREE="+r.workTree, "GIT_INDEX_FILE="+index)
	} else if r.index != "" {
		env = append(env, "GIT_INDEX_FILE="+r.index)
	}
	return env
}

// run runs git and returns its output (stdout and stderr interleaved,
// trailing space trimmed). Parse it only where no stderr can interfere,
// or tolerantly; bulk output goes through withOutputFile instead.
func (r runner) run(ctx context.Context, c call) (string, error) {
	argv := append([]string{"git"}, hardening()...)
	argv = append(argv, c.config...)
	argv = append(argv, c.args...)
	cmd := execx.Cmd{
		Argv:    argv,
		Dir:     c.dir,
		Env:     r.env(),
		PassEnv: passEnv(),
		Stdin:   c.stdin,
		Timeout: r.opts.Timeout,
	}
	if cmd.Dir == "" {
		cmd.Dir = r.gitDir
	}
	if c.live {
		cmd.Output = r.opts.Output
	}
	out, err := execx.Output(ctx, cmd)
	if err == nil {
		return out, nil
	}
	// execx names the whole argv, a wall of -c settings; say which git
	// command failed and why, and keep execx's errors in the chain.
	sub := "git " + c.args[0]
	var ee *execx.ExitError
	switch {
	case errors.As(err, &ee):
		return out, &commandError{sub: sub, exit: ee}
	case errors.Is(err, execx.ErrTimeout) && ctx.Err() == nil:
		return out, fmt.Errorf("%s: %w after %s", sub, execx.ErrTimeout, r.opts.Timeout)
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s: %w", sub, context.Cause(ctx))
	default:
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return out, fmt.Errorf("start %s: %w", sub, err)
	}
}

// withOutputFile gives git a file to write its answer to (git's --output),
// so that the answer is neither mixed with stderr nor cut to execx's
// capture cap, and hands the file to read.
func withOutputFile(run func(path string) error, read func(f *os.File) error) error {
	f, err := os.CreateTemp("", "fraisier-git-*")
	if err != nil {
		return fmt.Errorf("create output file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := run(f.Name()); err != nil {
		return err
	}
	// git replaced the content through its own descriptor; read from the start.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read output file: %w", err)
	}
	return read(f)
}

// nulScanner reads the NUL-terminated records of a file git wrote with -z;
// a record (a path) may be as long as a megabyte.
func nulScanner(f *os.File) *bufio.Scanner {
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	sc.Split(splitNUL)
	return sc
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
