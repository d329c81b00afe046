package config

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update rewrites the committed schema and the golden files from what the
// code produces: go test ./internal/config -update.
var update = flag.Bool("update", false, "rewrite schema/fraises.schema.json and testdata/*.golden")

const schemaFile = "../../schema/fraises.schema.json"

// TestSchemaIsCurrent fails when the committed schema is not what the
// structs generate; go generate ./internal/config rewrites it.
func TestSchemaIsCurrent(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v (run go generate ./internal/config)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("schema/fraises.schema.json is stale; run go generate ./internal/config (-committed +generated):\n%s", diff)
	}
}

// TestSchemaHasEveryField walks every struct field the decoder knows and
// checks the schema describes it with the same required and enum facts.
func TestSchemaHasEveryField(t *testing.T) {
	raw, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, obj map[string]any, path string)
	walk = func(typ reflect.Type, obj map[string]any, path string) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		if obj["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", path)
		}
		props, _ := obj["properties"].(map[string]any)
		required := map[string]bool{}
		for _, r := range asSlice(obj["required"]) {
			required[r.(string)] = true
		}
		for _, fi := range fieldsOf(typ) {
			p := joinPath(path, fi.name)
			prop, ok := props[fi.name].(map[string]any)
			if !ok {
				t.Errorf("%s: not in the schema", p)
				continue
			}
			delete(props, fi.name)
			if required[fi.name] != fi.required {
				t.Errorf("%s: required is %v in the schema, %v in the struct", p, required[fi.name], fi.required)
			}
			if fi.enum != nil {
				got := findEnum(prop)
				if diff := cmp.Diff(fi.enum, got); diff != "" {
					t.Errorf("%s: enum differs (-struct +schema):\n%s", p, diff)
				}
			}
			ft := typ.Field(fi.index).Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != durationType {
				def, ok := defs[ft.Name()].(map[string]any)
				if !ok {
					t.Errorf("%s: no $defs/%s", p, ft.Name())
					continue
				}
				if !strings.Contains(mustJSON(t, prop), `"#/$defs/`+ft.Name()+`"`) {
					t.Errorf("%s: does not refer to $defs/%s", p, ft.Name())
				}
				walk(ft, def, p)
			}
		}
		for k := range props {
			t.Errorf("%s: the schema has %q, which no struct field decodes", path, k)
		}
	}
	walk(configType, schema, "")
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func findEnum(prop map[string]any) []string {
	if e, ok := prop["enum"]; ok {
		var out []string
		for _, x := range e.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	for _, alt := range asSlice(prop["anyOf"]) {
		if got := findEnum(alt.(map[string]any)); got != nil {
			return got
		}
	}
	return nil
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
