package cli

import (
	"context"
	"slices"

	"github.com/fraiseql/fraisier/internal/store"
)

// fillRestarts adds to each row how its last deployment took over and,
// for blue/green, which colour serves.
func fillRestarts(ctx context.Context, db *store.DB, o statusOptions, rows []targetStatusJSON) error {
	rs, err := db.Restarts(ctx, o.fraise, o.env)
	if err != nil {
		return err
	}
	byTarget := map[store.Target]store.TargetRestart{}
	for _, r := range rs {
		byTarget[r.Target] = r
	}
	for i := range rows {
		if r, ok := byTarget[store.Target{Fraise: rows[i].Fraise, Environment: rows[i].Environment}]; ok {
			rows[i].Restart, rows[i].Colour = r.Mode, r.Colour
		}
	}
	return nil
}

// anyColour says whether a row has a blue/green colour: only then does the
// table show the SERVES column.
func anyColour(rows []targetStatusJSON) bool {
	return slices.ContainsFunc(rows, func(r targetStatusJSON) bool { return r.Colour != "" })
}

// withColour is a row's cells, the sixth (SERVES) left out when no row
// has a colour.
func withColour(colours bool, cells ...string) []string {
	if colours {
		return cells
	}
	return slices.Delete(cells, 5, 6)
}
