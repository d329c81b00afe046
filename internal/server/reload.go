package server

import (
	"reflect"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
)

// routingTable is what a configuration reload replaces: the fraises a
// delivery routes to and the secrets that authenticate it. A delivery
// reads one table from authentication to routing.
type routingTable struct {
	cfg    *config.Config
	router *config.Router
	keys   map[forge.Kind]forgeKeys
}

func newRoutingTable(cfg *config.Config) *routingTable {
	return &routingTable{cfg: cfg, router: cfg.Router(), keys: buildKeys(cfg)}
}

// Reload makes cfg, loaded and validated, what deliveries route by and
// authenticate with from now on: its fraises, git forges and secrets.
// Deliveries already past authentication finish with the table they
// read. The server: and state: sections hold until a restart: Reload
// returns the keys of those that cfg changes (server.listen, ...), for
// the log to say a restart is needed.
func (s *Server) Reload(cfg *config.Config) (needRestart []string) {
	s.table.Store(newRoutingTable(cfg))
	s.metrics.reloads.WithLabelValues("applied").Inc()
	needRestart = changedKeys("server", s.cfg.Server, cfg.Server)
	return append(needRestart, changedKeys("state", s.cfg.State, cfg.State)...)
}

// ReloadRefused counts a reload whose file did not load: the
// configuration in use stays.
func (s *Server) ReloadRefused() { s.metrics.reloads.WithLabelValues("refused").Inc() }

// changedKeys names, as prefix.key (the file's yaml keys), the fields of
// two structs of one type that differ, nested structs by their own keys.
func changedKeys(prefix string, old, cur any) []string {
	a, b := reflect.ValueOf(old), reflect.ValueOf(cur)
	var out []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + "." + name
		if f.Type.Kind() == reflect.Struct && f.Type.NumField() > 0 && f.Type.Field(0).IsExported() {
			out = append(out, changedKeys(key, a.Field(i).Interface(), b.Field(i).Interface())...)
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, key)
		}
	}
	return out
}
