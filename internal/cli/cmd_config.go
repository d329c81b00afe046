package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with fraises.yaml",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return &usageError{errors.New("config needs a subcommand: validate")}
		},
	}
	cmd.AddCommand(a.configValidateCommand())
	return cmd
}

// validateJSON is the stable --json shape of config validate.
type validateJSON struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Problems []problemJSON   `json:"problems"`
	Warnings []problemJSON   `json:"warnings"`
	Summary  *config.Summary `json:"summary,omitempty"`
}

type problemJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (a *app) configValidateCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate [file]",
		Short: "Check fraises.yaml and report every problem at once",
		Long: `Check fraises.yaml: syntax, unknown keys, types, required fields, names,
paths, schedules, protected environments and webhook routing. Every problem
is reported at once with file:line:col and a hint. Exits 0 when the file is
valid and 3 when it is not (or cannot be found).

file defaults to --config, then $FRAISIER_CONFIG, then ./fraises.yaml, then
/etc/fraisier/fraises.yaml.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			flagPath := a.configPath
			if len(args) == 1 {
				flagPath = args[0]
			}
			path, err := config.Find(flagPath, a.env.Lookup)
			if err != nil {
				return withCode(ExitConfig, err)
			}
			cfg, err := config.Load(path, a.configOptions())
			var cerr *config.Error
			if err != nil && !errors.As(err, &cerr) {
				return withCode(ExitConfig, err)
			}
			if asJSON {
				out := validateJSON{File: path, Valid: err == nil, Problems: []problemJSON{}, Warnings: []problemJSON{}}
				if cerr != nil {
					for _, p := range cerr.Problems {
						out.Problems = append(out.Problems, problemOf(p))
					}
				} else {
					for _, p := range cfg.Warnings {
						out.Warnings = append(out.Warnings, problemOf(p))
					}
					s := cfg.Summary()
					out.Summary = &s
				}
				if werr := writeJSON(a.streams.Out, out); werr != nil {
					return werr
				}
				if cerr != nil {
					return &silentError{withCode(ExitConfig, cerr)}
				}
				return nil
			}
			if cerr != nil {
				for _, p := range cerr.Problems {
					fmt.Fprintln(a.streams.Err, p.String())
				}
				n := len(cerr.Problems)
				fmt.Fprintf(a.streams.Err, "%s: %d problem%s\n", path, n, plural(n))
				return &silentError{withCode(ExitConfig, cerr)}
			}
			// Warnings do not make the file invalid: printed, exit 0.
			for _, p := range cfg.Warnings {
				fmt.Fprintln(a.streams.Err, "warning: "+p.String())
			}
			s := cfg.Summary()
			_, err = fmt.Fprintf(a.streams.Out, "%s: valid (%d fraise%s, %d environment%s, %d job%s)\n",
				path, s.Fraises, plural(s.Fraises), s.Environments, plural(s.Environments), s.Jobs, plural(s.Jobs))
			return err
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func problemOf(p config.Problem) problemJSON {
	return problemJSON{File: p.File, Line: p.Line, Column: p.Col, Path: p.Path, Message: p.Message, Hint: p.Hint}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
