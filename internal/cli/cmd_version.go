package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/version"
)

func (a *app) versionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print fraisier's version",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			if asJSON {
				return writeJSON(a.streams.Out, info)
			}
			commit := info.Commit
			if len(commit) > 12 {
				commit = commit[:12]
			}
			_, err := fmt.Fprintf(a.streams.Out, "fraisier %s (commit %s, built %s, %s)\n",
				info.Version, orDash(commit), orDash(info.Date), info.GoVersion)
			return err
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func addJSONFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print JSON (the shape is documented in docs/json.md)")
}
