package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The rules written in struct tags (name, account, abs, min, max), and the
// refusal of control characters, applied to every value of the file.

// namePattern is the shape of fraise, environment and job names: they end
// up in paths, unit names and SQL.
const namePattern = `^[a-z0-9][a-z0-9_-]*$`

const maxNameLen = 64

// validateTags applies the abs, name, min and max tags and refuses
// negative durations, walking the structs by reflection as the decoder
// and the schema generator do.
func (l *loader) validateTags(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			l.validateTags(v.Elem(), path)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				l.validateTags(v.Index(i), indexPath(path, i))
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			l.validateTags(v.MapIndex(k), joinPath(path, k.String()))
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			key := sf.Tag.Get("yaml")
			if key == "" || key == "-" {
				continue
			}
			p := joinPath(path, key)
			fv := v.Field(i)
			if sf.Tag.Get("name") == "true" {
				l.checkNames(p, fv)
			}
			if sf.Tag.Get("account") == "true" && fv.String() != "" {
				l.checkAccount(p, key, fv.String())
			}
			if sf.Tag.Get("abs") == "true" && fv.String() != "" {
				if clean, ok := l.checkAbs(p, key, fv.String()); ok {
					fv.SetString(clean)
				}
			}
			if l.has(p) {
				l.checkBounds(p, key, sf, fv)
			}
			l.checkControl(p, key, fv)
			l.validateTags(fv, p)
		}
	}
}

func (l *loader) checkNames(path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); s != "" {
			if msg := nameProblem(s); msg != "" {
				l.report(path, fmt.Sprintf("%q %s", s, msg), nameHint(s))
			}
		}
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		for _, k := range keys {
			if msg := nameProblem(k); msg != "" {
				l.report(joinPath(path, k), fmt.Sprintf("%q %s", k, msg), nameHint(k))
			}
		}
	}
}

var nameRE = regexp.MustCompile(namePattern)

func nameProblem(s string) string {
	switch {
	case len(s) > maxNameLen:
		return fmt.Sprintf("is longer than %d characters", maxNameLen)
	case !nameRE.MatchString(s):
		return "is not a valid name: use lower-case letters, digits, - and _, starting with a letter or digit"
	}
	return ""
}

func nameHint(s string) string {
	fixed := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
	fixed = strings.TrimLeft(fixed, "-_")
	if len(fixed) > maxNameLen {
		fixed = fixed[:maxNameLen]
	}
	if fixed == "" || fixed == s {
		return "names end up in paths, unit names and SQL"
	}
	return fmt.Sprintf("names end up in paths, unit names and SQL; try %q", fixed)
}

// checkAbs refuses relative paths and .. components; other untidiness
// (a trailing slash, //) is cleaned away.
func (l *loader) checkAbs(path, key, s string) (string, bool) {
	if !filepath.IsAbs(s) {
		l.report(path, fmt.Sprintf("%s %q is not an absolute path", key, s), "start it with /")
		return "", false
	}
	if slices.Contains(strings.Split(s, "/"), "..") {
		l.report(path, fmt.Sprintf("%s %q has a .. component", key, s), fmt.Sprintf("write %s", filepath.Clean(s)))
		return "", false
	}
	return filepath.Clean(s), true
}

func (l *loader) checkBounds(path, key string, sf reflect.StructField, v reflect.Value) {
	var x float64
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		if v.Type() == durationType {
			if v.Int() < 0 {
				l.report(path, fmt.Sprintf("%s must not be negative", key), "")
			}
			return
		}
		x = float64(v.Int())
	case reflect.Float64:
		x = v.Float()
	default:
		return
	}
	if m := sf.Tag.Get("min"); m != "" {
		if lo, _ := strconv.ParseFloat(m, 64); x < lo {
			l.report(path, fmt.Sprintf("%s must be at least %s", key, m), boundHint(key))
		}
	}
	if m := sf.Tag.Get("max"); m != "" {
		if hi, _ := strconv.ParseFloat(m, 64); x > hi {
			l.report(path, fmt.Sprintf("%s must be at most %s", key, m), boundHint(key))
		}
	}
}

func boundHint(key string) string {
	if key == "body_limit" {
		return "in bytes: 1048576 is 1 MiB, 26214400 is 25 MiB"
	}
	return ""
}

// ownControlCheck lists the keys whose own rule already refuses control
// characters (with its own message), and body_contains, which only ever
// compares. A fraise's description may span lines (see checkControl).
var ownControlCheck = map[string]bool{"branch": true, "tags": true, "pull_requests": true, "on_calendar": true, "systemd_service": true,
	"systemd_timer": true, "url": true, "tcp": true, "name": true, "body_contains": true, "user": true, "group": true}

// argvKeys are the keys that hold an argv or an environment: a newline
// there is an argument (sh -c "a\nb"), but NUL cannot be passed to a
// program at all.
var argvKeys = map[string]bool{"command": true, "up": true, "down": true, "current": true, "env": true}

// checkControl refuses control characters in the strings of the file that
// reach paths, argv, unit files and environments: a newline in a path or
// a description would start a new line of a unit file, and NUL cannot
// reach the kernel. Secrets are left alone (they are compared, never
// passed on) and so are the keys checked by their own rule.
func (l *loader) checkControl(path, key string, v reflect.Value) {
	if ownControlCheck[key] || v.Type() == secretType {
		return
	}
	if key == "description" && !strings.Contains(path, ".jobs[") {
		return // a fraise's description is only shown; a job's goes into its unit files
	}
	bad := func(s string) bool {
		if argvKeys[key] {
			return strings.IndexByte(s, 0) >= 0
		}
		return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
	}
	what := "control characters"
	if argvKeys[key] {
		what = "a NUL byte"
	}
	switch v.Kind() {
	case reflect.String:
		if bad(v.String()) {
			l.report(path, fmt.Sprintf("%s holds %s", key, what), "")
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String && v.Type().Elem() != secretType {
			for i := range v.Len() {
				if bad(v.Index(i).String()) {
					l.report(indexPath(path, i), fmt.Sprintf("%s holds %s", key, what), "")
				}
			}
		}
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.String {
			for _, k := range sortedKeys(v.Interface().(map[string]string)) {
				if bad(v.MapIndex(reflect.ValueOf(k)).String()) {
					l.report(joinPath(path, k), fmt.Sprintf("%s holds %s", key, what), "")
				}
			}
		}
	}
}
