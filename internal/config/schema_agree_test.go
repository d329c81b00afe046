package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestSchemaAgreesWithDecoder validates documents against the committed
// schema with a small validator for the keywords the generator emits, and
// checks the verdict matches the decoder's on tag-level rules: the valid
// sample passes, and files with unknown keys, wrong types or bad enums fail.
func TestSchemaAgreesWithDecoder(t *testing.T) {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile("../../examples/fraises.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		yaml  string
		valid bool
	}{
		{"examples/fraises.yaml", string(sample), true},
		{"minimal", apiWith(base), true},
		{"env references in typed values", apiWith(base + "keep_releases: ${KEEP:-3}\nauto_deploy: ${AUTO:-true}\ntimeouts: {fetch: 90, install: 5m, deploy: \"${T:-10m}\"}\n"), true},
		{"string or list of units", apiWith(base+"systemd_service: api\n") + "      staging: {branch: dev, app_path: /srv/s, systemd_service: [a, b]}\n", true},
		{"x- keys at the top", "x-anything: [1, 2]\n" + apiWith(base), true},
		{"unknown key", apiWith(base + "colour: blue\n"), false},
		{"unknown top-level key", "servers: {}\n" + apiWith(base), false},
		{"wrong type", apiWith(base + "keep_releases: five\n"), false},
		{"bad enum", apiWith(base + "layout: sideways\n"), false},
		{"bad name", strings.Replace(apiWith(base), "production:", "Prod:", 1), false},
		{"bad duration", apiWith(base + "timeouts: {fetch: 5 minutes}\n"), false},
		{"below minimum", apiWith(base + "keep_releases: 0\n"), false},
		{"missing required", "fraises:\n  api:\n    type: api\n", false},
		{"relative abs path", apiWith("branch: main\napp_path: srv/api\n"), false},
		{"user and group", apiWith(base + "user: deploy\ngroup: \"1001\"\n"), true},
		{"bad user", apiWith(base + "user: \"deploy user\"\n"), false},
		{"allow_unsigned boolean", "git:\n  gitea: {secret: a-gitea-secret-of-length, allow_unsigned: true}\n" + apiWith(base), false},
		{"allow_unsigned by address", "git:\n  gitea: {secret: a-gitea-secret-of-length, allow_unsigned: {from: [10.0.0.0/8]}}\n" + apiWith(base), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc any
			if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			errs := (&miniSchema{root: schema}).validate(schema, normalizeYAML(doc), "")
			if tc.valid && len(errs) > 0 {
				t.Errorf("the schema refuses a valid file:\n%s", strings.Join(errs, "\n"))
			}
			if !tc.valid && len(errs) == 0 {
				t.Errorf("the schema accepts a file fraisier refuses")
			}
			_, perr := Parse("f.yaml", []byte(tc.yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
			if (perr == nil) != tc.valid {
				t.Errorf("the decoder says valid=%v: %v", perr == nil, perr)
			}
		})
	}
}

// normalizeYAML turns the decoded YAML into JSON's shapes.
func normalizeYAML(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = normalizeYAML(x)
		}
		return out
	case map[any]any:
		out := map[string]any{}
		for k, x := range v {
			out[fmt.Sprint(k)] = normalizeYAML(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalizeYAML(x)
		}
		return out
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return v
}

// miniSchema validates the subset of JSON Schema that JSONSchema emits.
type miniSchema struct{ root map[string]any }

func (m *miniSchema) validate(s map[string]any, v any, path string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		errs = append(errs, m.validate(m.root["$defs"].(map[string]any)[name].(map[string]any), v, path)...)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		matched := false
		for _, alt := range alts {
			if len(m.validate(alt.(map[string]any), v, path)) == 0 {
				matched = true
				break
			}
		}
		if !matched {
			fail("matches no alternative")
		}
	}
	if typ, ok := s["type"].(string); ok && !hasType(typ, v) {
		fail("want %s, got %T", typ, v)
		return errs
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			fail("%v not in enum", v)
		}
	}
	if str, ok := v.(string); ok {
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > n {
			fail("longer than %v", n)
		}
	}
	if num, ok := v.(float64); ok {
		if n, ok := s["minimum"].(float64); ok && num < n {
			fail("below %v", n)
		}
		if n, ok := s["maximum"].(float64); ok && num > n {
			fail("above %v", n)
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, m.validate(items, x, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		patterns, _ := s["patternProperties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				fail("missing %s", r)
			}
		}
		for k, x := range obj {
			p := joinPath(path, k)
			if pn, ok := s["propertyNames"].(map[string]any); ok {
				errs = append(errs, m.validate(pn, k, p)...)
			}
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, m.validate(ps, x, p)...)
				continue
			}
			matched := false
			for pat := range patterns {
				matched = matched || regexp.MustCompile(pat).MatchString(k)
			}
			if matched {
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, p+": not allowed")
				}
			case map[string]any:
				errs = append(errs, m.validate(ap, x, p)...)
			}
		}
	}
	return errs
}

func hasType(typ string, v any) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := v.(float64)
		return ok
	}
	return false
}
