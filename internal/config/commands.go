package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// The checks of what an environment runs: its units, its commands, its
// health check and its jobs.

// unitTypes are the suffixes systemd knows; a name ending in none of them
// is a service, as systemctl assumes.
var unitTypes = []string{"service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope"}

// unitName checks a unit name and adds the suffix a bare name implies. It
// returns the full name, or a problem and maybe a hint.
func unitName(s, suffix string) (name, problem, hint string) {
	if s == "" {
		return "", "is empty", ""
	}
	if len(s) > 255 {
		return "", "is longer than 255 characters", ""
	}
	for _, c := range s {
		ok := c == ':' || c == '_' || c == '.' || c == '\\' || c == '@' || c == '-' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return "", fmt.Sprintf("has %q, which unit names cannot hold", c), "unit names use letters, digits and : _ . \\ @ -"
		}
	}
	name = s
	if i := strings.LastIndexByte(s, '.'); i < 0 || !slices.Contains(unitTypes, s[i+1:]) {
		name = s + "." + suffix
	}
	if !strings.HasSuffix(name, "."+suffix) {
		return "", "is not a ." + suffix + " unit", "a name without a suffix gets ." + suffix
	}
	if strings.HasSuffix(name, "@."+suffix) {
		return "", "is a template; name an instance", "e.g. " + strings.TrimSuffix(name, "@."+suffix) + "@1." + suffix
	}
	if strings.HasPrefix(name, "@") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") {
		return "", "does not start with a letter or digit", ""
	}
	return name, "", ""
}

// checkUnit checks a unit name written at path and stores it with its
// suffix. An empty name was not written and could not be defaulted (an
// invalid job name is reported already).
func (l *loader) checkUnit(path string, unit *string, suffix string) {
	if *unit == "" && !l.has(path) {
		return
	}
	name, msg, hint := unitName(*unit, suffix)
	if msg != "" {
		l.report(path, fmt.Sprintf("unit %q %s", *unit, msg), orHint(hint, "a name without a suffix gets ."+suffix))
		return
	}
	*unit = name
}

func (l *loader) validateServices(path string, e *Environment) {
	seen := map[string]bool{}
	for i, s := range e.SystemdService {
		p := path + ".systemd_service"
		if !l.present[p].scalar {
			p = indexPath(p, i) // a list; a single name is reported at itself
		}
		name, msg, hint := unitName(s, "service")
		switch {
		case msg != "":
			l.report(p, fmt.Sprintf("unit %q %s", s, msg), orHint(hint, "a name without a suffix gets .service"))
		case seen[name]:
			l.report(p, fmt.Sprintf("unit %s is listed twice", name), "")
		default:
			seen[name] = true
			e.SystemdService[i] = name
		}
	}
}

// validateArgv checks a command line: fraisier runs it without a shell, so
// it needs a program, and the program cannot look like an option.
func (l *loader) validateArgv(path string, argv []string) {
	switch {
	case len(argv) == 0 && l.has(path):
		l.report(path, "empty command", "write the program and its arguments as a list: [uv, sync]")
	case len(argv) == 0:
	case strings.TrimSpace(argv[0]) == "":
		l.report(indexPath(path, 0), "the program is empty", "")
	case strings.HasPrefix(argv[0], "-"):
		l.report(indexPath(path, 0), fmt.Sprintf("program %q starts with -", argv[0]), "the first item is the program; options come after it")
	case len(argv) == 1 && strings.ContainsAny(argv[0], " \t") && !strings.Contains(argv[0], "/"):
		l.report(indexPath(path, 0), fmt.Sprintf("program %q holds spaces", argv[0]),
			"commands never go through a shell: write each argument as its own item, ["+strings.Join(strings.Fields(argv[0]), ", ")+"]")
	}
}

func (l *loader) validateCommand(path string, c *Command) {
	l.validateArgv(path+".command", c.Argv)
	if c.Dir != "" {
		l.checkRelative(path+".dir", "dir", c.Dir)
	}
	l.checkEnvNames(path+".env", c.Env)
}

func (l *loader) checkEnvNames(path string, env map[string]string) {
	for _, k := range sortedKeys(env) {
		ok := k != "" && isNameStart(k[0])
		for i := 0; ok && i < len(k); i++ {
			ok = isNameChar(k[i])
		}
		if !ok {
			l.report(joinPath(path, k), fmt.Sprintf("%q is not an environment variable name", k), "letters, digits and _, not starting with a digit")
		}
	}
}

// validateHealthCheck checks a health check written at path. own says the
// keys were written there (rather than inherited from defaults), which is
// when their presence is worth reporting.
func (l *loader) validateHealthCheck(path string, hc *HealthCheck, e *Environment, own bool) {
	var targets []string
	for _, t := range []struct {
		key string
		set bool
	}{{"url", hc.URL != ""}, {"tcp", hc.TCP != ""}, {"command", len(hc.Command) > 0}, {"unit", hc.Unit}} {
		if t.set {
			targets = append(targets, t.key)
		}
	}
	switch {
	case !own:
		// Inherited from defaults.health_check, and checked there.
	case len(targets) == 0 && e != nil:
		l.report(path, "the health check says nothing to check", "set exactly one of url, tcp, command or unit: true")
	case len(targets) > 1:
		l.report(path+"."+targets[1], fmt.Sprintf("the health check sets both %s and %s", targets[0], targets[1]), "set exactly one of url, tcp, command or unit: true")
	}
	if own {
		if hc.URL != "" {
			u, err := url.Parse(hc.URL)
			switch {
			case err != nil:
				l.report(path+".url", fmt.Sprintf("url %q is not a URL", hc.URL), "")
			case u.Scheme != "http" && u.Scheme != "https":
				l.report(path+".url", fmt.Sprintf("url %q is not http or https", hc.URL), "e.g. http://127.0.0.1:8000/health")
			case u.Host == "":
				l.report(path+".url", fmt.Sprintf("url %q has no host", hc.URL), "e.g. http://127.0.0.1:8000/health")
			}
		}
		if hc.TCP != "" {
			if msg := hostPortProblem(hc.TCP); msg != "" {
				l.report(path+".tcp", fmt.Sprintf("tcp %q %s", hc.TCP, msg), "e.g. 127.0.0.1:5432")
			}
		}
		l.validateArgv(path+".command", hc.Command)
		if hc.URL == "" && len(targets) > 0 {
			for _, k := range []string{"expect_status", "body_contains"} {
				if l.has(path + "." + k) {
					l.report(path+"."+k, k+" applies to url checks only", "")
				}
			}
		}
		for _, d := range []struct {
			key string
			v   Duration
		}{{"timeout", hc.Timeout}, {"interval", hc.Interval}, {"deadline", hc.Deadline}} {
			if l.has(path+"."+d.key) && d.v == 0 {
				l.report(path+"."+d.key, d.key+" must be positive", "")
			}
		}
	}
	if e != nil && hc.Unit && len(e.SystemdService) == 0 {
		l.report(path+".unit", "unit: true checks the environment's units, and it has no systemd_service", "set systemd_service, or check a url, tcp or command")
	}
}

func (l *loader) validateJobs(path string, fr *Fraise, e *Environment) {
	if fr.Type == TypeScheduled && len(e.Jobs) == 0 && !l.ps.covered(path+".jobs") {
		l.report(path+".jobs", "a scheduled fraise needs at least one job", "jobs: [{name: nightly, schedule: \"0 3 * * *\", command: [bin/nightly]}]")
	}
	names := map[string]bool{}
	for i := range e.Jobs {
		j := &e.Jobs[i]
		p := indexPath(path+".jobs", i)
		if j.Name != "" {
			if names[j.Name] {
				l.report(p+".name", fmt.Sprintf("job %q is defined twice in this environment", j.Name), "job names are unique within an environment")
			}
			names[j.Name] = true
		}
		switch {
		case j.Schedule != "" && j.OnCalendar != "":
			l.report(p+".on_calendar", "a job has schedule or on_calendar, not both", "")
		case j.Schedule == "" && j.OnCalendar == "":
			l.report(p, "a job needs schedule (cron) or on_calendar (systemd)", `e.g. schedule: "0 3 * * *" or on_calendar: "*-*-* 03:00:00"`)
		case j.Schedule != "":
			if _, err := CronToOnCalendar(j.Schedule); err != nil {
				l.report(p+".schedule", err.Error(), "minute hour day-of-month month day-of-week, e.g. \"30 2 * * 1-5\"")
			}
		default:
			if strings.ContainsFunc(j.OnCalendar, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				l.report(p+".on_calendar", "on_calendar holds control characters", "")
			}
		}
		l.validateArgv(p+".command", j.Command)
		l.checkUnit(p+".systemd_service", &j.SystemdService, "service")
		l.checkUnit(p+".systemd_timer", &j.SystemdTimer, "timer")
	}
}
