package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
)

// listJSON is the stable --json shape of list.
type listJSON struct {
	Fraises []fraiseJSON `json:"fraises"`
}

type fraiseJSON struct {
	Name         string            `json:"name"`
	Type         config.FraiseType `json:"type"`
	Description  string            `json:"description"`
	Repository   string            `json:"repository"`
	Environments []environmentJSON `json:"environments"`
}

type environmentJSON struct {
	Name      string        `json:"name"`
	Branch    string        `json:"branch"`
	AppPath   string        `json:"app_path"`
	Layout    config.Layout `json:"layout"`
	Services  []string      `json:"services"`
	Scope     string        `json:"scope"`
	Protected bool          `json:"protected"`
	Jobs      []string      `json:"jobs"`
}

func (a *app) listCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the configured fraises and their environments",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			out := listJSON{Fraises: []fraiseJSON{}}
			for _, name := range cfg.FraiseNames() {
				f := cfg.Fraises[name]
				fj := fraiseJSON{Name: name, Type: f.Type, Description: f.Description, Repository: f.Repository, Environments: []environmentJSON{}}
				for _, envName := range f.EnvironmentNames() {
					fj.Environments = append(fj.Environments, environmentView(f.Environments[envName]))
				}
				out.Fraises = append(out.Fraises, fj)
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			t := newTable(a.streams.Out, "FRAISE", "TYPE", "ENVIRONMENT", "BRANCH", "UNITS", "APP PATH")
			for _, f := range out.Fraises {
				for _, e := range f.Environments {
					units := e.Services
					if len(e.Jobs) > 0 {
						units = e.Jobs
					}
					t.row(f.Name, string(f.Type), e.Name, e.Branch, orDash(strings.Join(units, ",")), orDash(e.AppPath))
				}
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func environmentView(e *config.Environment) environmentJSON {
	ej := environmentJSON{
		Name: e.Name, Branch: e.Branch, AppPath: e.AppPath, Layout: e.Layout,
		Services: append([]string{}, e.Services()...), Scope: e.Scope, Protected: e.IsProtected(),
		Jobs: []string{},
	}
	for _, j := range e.Jobs {
		ej.Jobs = append(ej.Jobs, j.Name)
	}
	return ej
}
