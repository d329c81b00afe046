package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// RestartBlueGreen starts the colour not serving, checks it, switches the
// proxy to it, then drains and stops the other (Environment.Restart; the
// other modes are in restart_socket.go).
const RestartBlueGreen = "blue_green"

// Blue/green defaults.
const (
	DefaultDrain        = Duration(10 * time.Second)
	DefaultNginxPIDFile = "/run/nginx.pid"
	DefaultCaddyAdmin   = "http://localhost:2019"
)

// BlueGreen runs two instances of a template unit, blue and green, behind
// a proxy the operator already runs: a deployment starts the colour that
// does not serve on the new release, checks it directly, points the proxy
// at it and stops the other colour once its requests have drained.
type BlueGreen struct {
	Unit  string   `yaml:"unit" json:"unit" required:"true" doc:"the template unit (app@.service) whose instances app@blue and app@green run the app from app_path/current-blue and app_path/current-green"`
	Blue  string   `yaml:"blue" json:"blue" required:"true" doc:"where the blue instance listens: host:port, or unix:/path"`
	Green string   `yaml:"green" json:"green" required:"true" doc:"where the green instance listens: host:port, or unix:/path"`
	Drain Duration `yaml:"drain" json:"drain" doc:"how long the old colour keeps running after the switch, for the requests it has in flight, before it is stopped (default 10s)"`
	Nginx *Nginx   `yaml:"nginx" json:"nginx,omitempty" doc:"nginx: fraisier writes an upstream block into file and reloads nginx"`
	Caddy *Caddy   `yaml:"caddy" json:"caddy,omitempty" doc:"Caddy: fraisier sets a reverse_proxy's upstreams through the admin API"`
	Link  string   `yaml:"link" json:"link,omitempty" abs:"true" doc:"a symlink the proxy dials as its one unix-socket upstream (nginx server unix:PATH; Caddy reverse_proxy unix/PATH): fraisier points it at the serving colour's socket with an atomic rename, reloading no proxy; both colours must listen on unix sockets, and its directory must be writable by fraisier's user alone"`
}

// Nginx is the nginx side of blue/green: an upstream block in a file of
// its own, which the operator's configuration includes.
type Nginx struct {
	Upstream   string   `yaml:"upstream" json:"upstream" required:"true" doc:"name of the upstream block fraisier writes (proxy_pass http://NAME)"`
	File       string   `yaml:"file" json:"file" required:"true" abs:"true" doc:"file fraisier writes the upstream block into, atomically; include it in nginx's http block"`
	PIDFile    string   `yaml:"pid_file" json:"pid_file,omitempty" abs:"true" doc:"nginx's master pid file (default /run/nginx.pid): signalled with SIGHUP to reload unless reload_unit is set, and watched to confirm the reload"`
	ReloadUnit string   `yaml:"reload_unit" json:"reload_unit,omitempty" doc:"reload nginx with systemctl reload of this unit (scope of the environment) instead of SIGHUP"`
	Test       []string `yaml:"test" json:"test,omitempty" doc:"argv that checks nginx's configuration before the reload (never through a shell), e.g. [nginx, -t, -q]; a failure puts the old file back"`
}

// Caddy is the Caddy side of blue/green: the upstreams of one
// reverse_proxy handler, set through Caddy's admin API.
type Caddy struct {
	Admin string `yaml:"admin" json:"admin,omitempty" doc:"Caddy's admin API, on loopback (default http://localhost:2019)"`
	ID    string `yaml:"id" json:"id,omitempty" doc:"the @id of the reverse_proxy handler whose upstreams fraisier sets"`
	Path  string `yaml:"path" json:"path,omitempty" doc:"or the admin API path of those upstreams, /config/apps/http/servers/.../upstreams"`
}

// IsBlueGreen says whether the environment restarts blue/green.
func (e *Environment) IsBlueGreen() bool { return e.Restart == RestartBlueGreen && e.BlueGreen != nil }

// Instance is the unit of one colour: app@.service's app@blue.service.
func (b *BlueGreen) Instance(colour string) string {
	return strings.Replace(b.Unit, "@.", "@"+colour+".", 1)
}

// Units are the units blue/green restarts or reloads: both colours'
// instances, and nginx's reload_unit when set (what polkit must allow).
func (b *BlueGreen) Units() []string {
	units := []string{b.Instance("blue"), b.Instance("green")}
	if b.Nginx != nil && b.Nginx.ReloadUnit != "" {
		units = append(units, b.Nginx.ReloadUnit)
	}
	return units
}

// Address is where colour listens.
func (b *BlueGreen) Address(colour string) string {
	if colour == "green" {
		return b.Green
	}
	return b.Blue
}

var (
	upstreamName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	caddyID      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// validateBlueGreen checks restart: blue_green and its blue_green block,
// and fills the block's defaults.
func (l *loader) validateBlueGreen(path string, f *Fraise, e *Environment) {
	b := e.BlueGreen
	if e.Restart != RestartBlueGreen {
		if b != nil {
			l.report(path+".blue_green", "blue_green is set but restart is not blue_green", "add restart: blue_green, or remove blue_green")
		}
		return
	}
	if b == nil {
		l.report(path+".restart", "restart: blue_green needs a blue_green block", "add blue_green: {unit: app@.service, blue: 127.0.0.1:8001, green: 127.0.0.1:8002, nginx: {...}} (docs/zero-downtime.md)")
		return
	}
	switch {
	case f.Type != TypeAPI:
		l.report(path+".restart", "restart: blue_green is for api fraises", "use restart: plain")
	case e.Layout == LayoutInplace:
		l.report(path+".restart", "restart: blue_green needs the releases layout: each colour runs its own release", "remove layout: inplace")
	case len(e.SystemdService) > 0:
		l.report(path+".systemd_service", "with restart: blue_green the units are blue_green.unit's instances", "remove systemd_service; name the template in blue_green.unit")
	case e.HealthCheck == nil:
		l.report(path+".health_check", "restart: blue_green needs a health check: traffic moves to the new colour only once it answers", "add health_check: {url: http://127.0.0.1:8001/health}; fraisier probes each colour at its own address")
	}
	bp := path + ".blue_green"
	l.validateColours(bp, e)
	if !l.has(bp + ".drain") {
		b.Drain = DefaultDrain
	}
	var kinds []string
	for _, k := range []struct {
		key string
		set bool
	}{{"nginx", b.Nginx != nil}, {"caddy", b.Caddy != nil}, {"link", b.Link != ""}} {
		if k.set {
			kinds = append(kinds, k.key)
		}
	}
	switch {
	case len(kinds) > 1:
		l.report(bp+"."+kinds[len(kinds)-1], "blue_green sets "+strings.Join(kinds, " and ")+": exactly one of nginx, caddy and link switches the traffic", "keep the one that serves this app")
	case b.Nginx != nil:
		l.validateNginx(bp+".nginx", b.Nginx)
	case b.Caddy != nil:
		l.validateCaddy(bp+".caddy", b.Caddy)
	case b.Link != "":
		l.validateLink(bp, b)
	default:
		l.report(bp, "blue_green names no proxy", "add link: /run/app-live/live.sock (colours on unix sockets), nginx: {upstream: app, file: /etc/nginx/fraisier/app.conf} or caddy: {id: app}")
	}
}

// sunPathMax is the longest unix socket path connect(2) and bind(2) take:
// sun_path's 108 bytes, less the terminating NUL.
const sunPathMax = 107

// validateLink checks blue_green.link: a path the proxy dials as a unix
// socket, the link to one of the colours' sockets, so both colours listen
// on unix sockets, each path short enough to bind or dial.
func (l *loader) validateLink(bp string, b *BlueGreen) {
	switch {
	case len(b.Link) > sunPathMax:
		l.report(bp+".link", fmt.Sprintf("link %q is %d bytes: a unix socket path the proxy dials holds at most %d", b.Link, len(b.Link), sunPathMax), "choose a shorter path, e.g. /run/app-live/live.sock")
	case strings.ContainsAny(b.Link, " ;{}"):
		l.report(bp+".link", fmt.Sprintf("link %q holds a space, ; or a brace, which the proxy's configuration cannot name", b.Link), "choose a plain path, e.g. /run/app-live/live.sock")
	}
	for _, c := range []struct{ key, addr string }{{"blue", b.Blue}, {"green", b.Green}} {
		p, ok := strings.CutPrefix(c.addr, "unix:")
		switch {
		case c.addr == "":
		case !ok:
			l.report(bp+"."+c.key, fmt.Sprintf("%s listens at %q: with link, each colour listens on a unix socket the link points at", c.key, c.addr), "write unix:/run/app/"+c.key+".sock")
		case p == b.Link:
			l.report(bp+"."+c.key, fmt.Sprintf("%s's socket is the link itself (%s)", c.key, p), "give the link its own path, in a directory of its own")
		case len(p) > sunPathMax:
			l.report(bp+"."+c.key, fmt.Sprintf("socket path %q is %d bytes: a unix socket path holds at most %d", p, len(p), sunPathMax), "choose a shorter path, e.g. /run/app/"+c.key+".sock")
		}
	}
}

// validateColours checks the template unit and the two addresses, and
// that the health check can reach each colour on its own.
func (l *loader) validateColours(bp string, e *Environment) {
	b := e.BlueGreen
	if b.Unit != "" {
		u := b.Unit
		if !strings.Contains(u, ".") {
			u += ".service"
		}
		if !strings.HasSuffix(u, "@.service") {
			l.report(bp+".unit", fmt.Sprintf("unit %q is not a template service (name@.service)", b.Unit), "write app@.service: fraisier runs app@blue and app@green")
		} else if _, msg, _ := unitName(strings.Replace(u, "@.", "@blue.", 1), "service"); msg != "" {
			l.report(bp+".unit", fmt.Sprintf("unit %q %s", b.Unit, msg), "unit names use letters, digits and : _ . \\ @ -")
		} else {
			b.Unit = u
		}
	}
	unix := false
	for _, c := range []struct{ key, addr string }{{"blue", b.Blue}, {"green", b.Green}} {
		if c.addr == "" {
			continue
		}
		if p, ok := strings.CutPrefix(c.addr, "unix:"); ok {
			unix = true
			if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, " ;{}") {
				l.report(bp+"."+c.key, fmt.Sprintf("socket path %q is not a clean absolute path", p), "write unix:/run/app/"+c.key+".sock")
			}
		} else if msg := hostPortProblem(c.addr); msg != "" || strings.ContainsAny(c.addr, " ;{}") {
			l.report(bp+"."+c.key, fmt.Sprintf("address %q %s", c.addr, orHint(msg, "holds a space, ; or a brace")), "write host:port (127.0.0.1:8001) or unix:/run/app/"+c.key+".sock")
		}
	}
	if b.Blue != "" && b.Blue == b.Green {
		l.report(bp+".green", "blue and green listen at the same address", "give each colour its own port or socket")
	}
	if hc := e.HealthCheck; unix && hc != nil && (hc.URL != "" || hc.TCP != "") {
		l.report(bp, "a colour listens on a unix socket, which a url or tcp health check cannot reach", "use health_check.command with {colour} in its arguments, or unit: true")
	}
}

func (l *loader) validateNginx(p string, n *Nginx) {
	if n.Upstream != "" && !upstreamName.MatchString(n.Upstream) {
		l.report(p+".upstream", fmt.Sprintf("upstream %q is not a plain name", n.Upstream), "letters, digits, _ . -, as in upstream app { ... }")
	}
	if n.PIDFile == "" {
		n.PIDFile = DefaultNginxPIDFile
	}
	if n.ReloadUnit != "" {
		name, msg, hint := unitName(n.ReloadUnit, "service")
		if msg != "" {
			l.report(p+".reload_unit", fmt.Sprintf("unit %q %s", n.ReloadUnit, msg), hint)
		} else {
			n.ReloadUnit = name
		}
	}
	l.validateArgv(p+".test", n.Test)
}

func (l *loader) validateCaddy(p string, c *Caddy) {
	if c.Admin == "" {
		c.Admin = DefaultCaddyAdmin
	}
	if msg := loopbackHTTP(c.Admin); msg != "" {
		l.report(p+".admin", fmt.Sprintf("admin %q %s", c.Admin, msg), "write http://localhost:2019, Caddy's default admin address")
	}
	switch {
	case c.ID != "" && c.Path != "":
		l.report(p+".path", "caddy sets both id and path", "keep one")
	case c.ID != "":
		if !caddyID.MatchString(c.ID) {
			l.report(p+".id", fmt.Sprintf("id %q is not a plain name", c.ID), "letters, digits, _ . -, as in \"@id\": \"app\"")
		}
	case c.Path != "":
		if !strings.HasPrefix(c.Path, "/config/") || !strings.HasSuffix(c.Path, "/upstreams") || strings.Contains(c.Path, "..") || strings.ContainsAny(c.Path, "?# ") {
			l.report(p+".path", fmt.Sprintf("path %q is not an admin API path of upstreams", c.Path), "e.g. /config/apps/http/servers/srv0/routes/0/handle/0/upstreams")
		}
	default:
		l.report(p, "caddy names no reverse_proxy", "set id to the handler's @id (\"@id\": \"app\" in Caddy's JSON), or path")
	}
}

// loopbackHTTP says what is wrong with an admin API URL: only plain http
// to a loopback address, since the admin API changes the proxy.
func loopbackHTTP(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "is not an http:// URL"
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "must be scheme, host and port only"
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "is not on loopback"
	}
	return ""
}
