package config

//go:generate go test -run TestSchemaIsCurrent -update .

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// SchemaID names the committed schema/fraises.schema.json.
const SchemaID = "https://github.com/fraiseql/fraisier/schema/fraises.schema.json"

// durationPattern matches what parseDuration accepts as a string: Go
// syntax or a bare number of seconds.
const durationPattern = `^([0-9]+|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$`

// JSONSchema returns the JSON Schema (draft 2020-12) of fraises.yaml. It is
// generated from the same struct tags the decoder reads, so editors and
// fraisier agree on keys, types, enums, required keys and name patterns.
// Rules that relate keys to each other (exactly one health check target,
// routing) are fraisier's alone.
func JSONSchema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.object(configType)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "fraises.yaml"
	root["description"] = "The configuration of fraisier: what it deploys, where and how."
	g.defs["envref"] = map[string]any{
		"type":        "string",
		"pattern":     `\$\{`,
		"description": "a ${VAR} reference, expanded when the file is loaded",
	}
	g.defs["duration"] = map[string]any{
		"description": `Go syntax ("90s", "5m", "1h30m") or a whole number of seconds`,
		"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": durationPattern},
			map[string]any{"$ref": "#/$defs/envref"},
		},
	}
	g.defs["stringList"] = map[string]any{
		"description": "one string or a list of them",
		"anyOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		},
	}
	root["$defs"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // descriptions hold <fraise> and ->, not markup
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode JSON Schema: %w", err)
	}
	return buf.Bytes(), nil
}

type schemaGen struct {
	defs map[string]any
}

// object is the schema of a struct: its keys, and no others.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("yaml")
		if key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		s := g.field(sf.Type, sf)
		if d := sf.Tag.Get("doc"); d != "" {
			s["description"] = d
		}
		props[key] = s
		if sf.Tag.Get("required") == "true" {
			required = append(required, key)
		}
	}
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	if t == configType {
		s["patternProperties"] = map[string]any{"^x-": map[string]any{"description": "ignored; a place for anchors"}}
	}
	return s
}

// ref returns a reference to the definition of struct type t, creating it
// on first use.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name := t.Name()
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil // placeholder, in case the type refers to itself
		g.defs[name] = g.object(t)
	}
	return map[string]any{"$ref": "#/$defs/" + name}
}

func (g *schemaGen) field(t reflect.Type, sf reflect.StructField) map[string]any {
	switch t {
	case durationType:
		return map[string]any{"$ref": "#/$defs/duration"}
	case stringListType:
		return map[string]any{"$ref": "#/$defs/stringList"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.field(t.Elem(), sf)
	case reflect.String:
		s := map[string]any{"type": "string"}
		switch {
		case sf.Tag.Get("enum") != "":
			s = map[string]any{"enum": strings.Split(sf.Tag.Get("enum"), "|")}
		case sf.Tag.Get("name") == "true":
			s["pattern"] = namePattern
			s["maxLength"] = maxNameLen
		case sf.Tag.Get("abs") == "true":
			s["pattern"] = "^/"
		case sf.Tag.Get("account") == "true":
			s["pattern"] = accountPattern
			s["maxLength"] = maxAccountLen
		default:
			return s
		}
		return withEnvRef(s)
	case reflect.Bool:
		return withEnvRef(map[string]any{"type": "boolean"})
	case reflect.Int, reflect.Int64:
		return withEnvRef(bounds(map[string]any{"type": "integer"}, sf))
	case reflect.Float64:
		return withEnvRef(bounds(map[string]any{"type": "number"}, sf))
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.elem(t.Elem())}
	case reflect.Map:
		s := map[string]any{"type": "object", "additionalProperties": g.elem(t.Elem())}
		if sf.Tag.Get("name") == "true" {
			s["propertyNames"] = map[string]any{"pattern": namePattern, "maxLength": maxNameLen}
		} else if t.Elem().Kind() == reflect.String {
			s["propertyNames"] = map[string]any{"pattern": envNamePattern}
		}
		return s
	case reflect.Struct:
		return g.ref(t)
	}
	panic(fmt.Sprintf("config: no schema for %s", t))
}

// envNamePattern is the shape of an environment variable name, the keys of
// every env mapping.
const envNamePattern = `^[A-Za-z_][A-Za-z0-9_]*$`

func (g *schemaGen) elem(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		return g.ref(t)
	}
	return g.field(t, reflect.StructField{})
}

func bounds(s map[string]any, sf reflect.StructField) map[string]any {
	for _, k := range []string{"min", "max"} {
		if v := sf.Tag.Get(k); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				panic(fmt.Sprintf("config: bad %s tag %q on %s", k, v, sf.Name))
			}
			s[map[string]string{"min": "minimum", "max": "maximum"}[k]] = n
		}
	}
	return s
}

// withEnvRef lets a typed or constrained scalar also be a ${VAR}
// reference, as the decoder does.
func withEnvRef(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/envref"}}}
}
