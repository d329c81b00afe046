package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/store"
)

// Streams is where a command reads and writes. Tests pass buffers; the
// binary passes the process's standard streams.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// OutIsTerminal enables colour on Out (never when NO_COLOR is set);
	// on a terminal, text that deployed code wrote (step output, details,
	// errors) is filtered of control characters (see terminalFilter), on
	// Out and, when ErrIsTerminal, on Err.
	OutIsTerminal bool
	ErrIsTerminal bool
}

// StdStreams returns the process's standard streams.
func StdStreams() Streams {
	return Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, OutIsTerminal: isTerminal(os.Stdout), ErrIsTerminal: isTerminal(os.Stderr)}
}

// Env is the process environment the CLI consults. Injected so that tests
// never depend on the environment of the machine running them.
type Env struct {
	Lookup func(string) (string, bool)
	Euid   int
}

// ProcessEnv is the environment of the running process.
func ProcessEnv() Env { return Env{Lookup: os.LookupEnv, Euid: os.Geteuid()} }

func (e Env) get(key string) string {
	v, _ := e.Lookup(key)
	return v
}

// Main runs fraisier with args and returns the process exit code.
func Main(args []string, streams Streams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, streams, ProcessEnv())
}

// Run is Main without the process: the whole CLI as a function.
func Run(ctx context.Context, args []string, streams Streams, env Env) int {
	a := &app{streams: streams, env: env}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var silent *silentError
	if !errors.As(err, &silent) {
		msg := err.Error()
		if store.IsUnavailable(err) && !strings.Contains(msg, "state database") {
			// "database is locked" alone leaves the user guessing which
			// database: the application's or fraisier's own.
			msg = "the state database is unavailable: " + msg
		}
		fmt.Fprintf(streams.Err, "fraisier: %s\n", msg)
	}
	return exitCode(err)
}

// RootCommand returns fraisier's command tree without running it, for
// programs that generate its man pages and shell completions.
func RootCommand(streams Streams, env Env) *cobra.Command {
	a := &app{streams: streams, env: env}
	return a.rootCommand()
}

// silentError is an error whose message the command has already printed in
// its own form (config validate prints every problem itself).
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// app holds what every command shares: the streams, the environment and the
// global flags. One is built per run; nothing is global.
type app struct {
	streams    Streams
	env        Env
	configPath string
	statePath  string
	noColor    bool
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "fraisier",
		Short:         "Deploy fraises: services pushed to a forge and run by systemd",
		SilenceUsage:  true,
		SilenceErrors: true,
		// A command without a subcommand is a usage error, not help with exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return &usageError{errors.New("a command is required (see fraisier --help)")}
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "fraises.yaml to use (default: $FRAISIER_CONFIG, ./fraises.yaml, /etc/fraisier/fraises.yaml)")
	pf.StringVar(&a.statePath, "state", "", "state database: a SQLite file or a postgres:// URL (default: $FRAISIER_STATE, the config's state section, then the system default)")
	pf.BoolVar(&a.noColor, "no-color", false, "never colour the output (also NO_COLOR)")

	root.AddCommand(
		a.versionCommand(),
		a.configCommand(),
		a.listCommand(),
		a.statusCommand(),
		a.historyCommand(),
		a.nodesCommand(),
		a.rolloutsCommand(),
		a.rolloutCommand(),
		a.statsCommand(),
		a.webhooksCommand(),
		a.notificationsCommand(),
		a.showCommand(),
		a.deployCommand(),
		a.rollbackCommand(),
		a.releasesCommand(),
		a.logsCommand(),
		a.lockCommand(),
		a.unlockCommand(),
		a.tokensCommand(),
		a.jobsCommand(),
		a.serveCommand(),
		a.nodeCommand(),
		a.pruneCommand(),
		a.initCommand(),
		a.doctorCommand(),
		a.installCommand(),
	)
	return root
}

// exactArgs and rangeArgs wrap cobra's argument checks as usage errors.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(min, max)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}
