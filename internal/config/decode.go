package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// The decoder walks the YAML AST rather than unmarshalling into the structs,
// because only the AST knows where each value was written, and because a
// strict unmarshal stops at the first problem while users want them all.

// presence records that a key was written, and where.
type presence struct {
	key, val position
	scalar   bool
}

// nodeBudget bounds the work of decoding, so that a small file whose
// aliases refer to each other many times over ("billion laughs") is refused
// rather than expanded. A large real configuration has a few thousand
// values.
const nodeBudget = 200_000

type decoder struct {
	ps *problems
	// expand resolves ${VAR} references in a scalar value; keys never go
	// through it.
	expand  func(string) (string, bool, *expandError)
	aliases map[*ast.AliasNode]ast.Node
	flat    map[*ast.MappingNode][]entry
	fields  map[reflect.Type][]fieldInfo
	// present maps the dotted path of every key that was written with a
	// value (not null) to its position.
	present map[string]presence
	budget  int
	aborted bool
}

// fieldInfo is what the struct tags say about one field.
type fieldInfo struct {
	name     string // yaml key
	index    int
	required bool
	enum     []string
	doc      string
}

func fieldsOf(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("yaml")
		if key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		fi := fieldInfo{name: key, index: i, required: sf.Tag.Get("required") == "true", doc: sf.Tag.Get("doc")}
		if e := sf.Tag.Get("enum"); e != "" {
			fi.enum = strings.Split(e, "|")
		}
		out = append(out, fi)
	}
	return out
}

var (
	durationType   = reflect.TypeFor[Duration]()
	stringListType = reflect.TypeFor[StringList]()
	secretType     = reflect.TypeFor[Secret]()
	configType     = reflect.TypeFor[Config]()
	unsignedType   = reflect.TypeFor[Unsigned]()
)

// decode stores node into v, reporting every problem under path. It
// reports whether the value was usable.
func (d *decoder) decode(n ast.Node, v reflect.Value, path string, fi *fieldInfo) bool {
	if d.aborted {
		return false
	}
	d.budget--
	if d.budget < 0 {
		d.aborted = true
		d.ps.add(nodePos(n), path, "the file expands to too many values (aliases referring to aliases?)", "")
		return false
	}
	n, forceString := d.unwrap(n)
	if n == nil || kindOf(n) == kindNull {
		return true
	}
	t := v.Type()
	switch {
	case t == unsignedType && kindOf(n) == kindBool:
		// true would open every fraise of the forge to anyone: say what to write.
		d.fail(n, path, "allow_unsigned takes the fraises and addresses that may deliver unsigned, not true or false",
			"write allow_unsigned: {fraises: [name], from: [10.0.0.0/8]} (either or both), or remove it")
		return false
	case t == durationType:
		return d.decodeDuration(n, v, path)
	case t == stringListType:
		if kindOf(n) == kindSequence {
			return d.decodeSlice(n, v, path)
		}
		s, ok := d.stringValue(n, forceString, path, fi, false)
		if ok {
			v.Set(reflect.ValueOf(StringList{s}))
		}
		return ok
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := d.stringValue(n, forceString, path, fi, t == secretType)
		if ok {
			v.SetString(s)
		}
		return ok
	case reflect.Bool:
		return d.decodeBool(n, v, path)
	case reflect.Int, reflect.Int64:
		return d.decodeInt(n, v, path)
	case reflect.Float64:
		return d.decodeFloat(n, v, path)
	case reflect.Pointer:
		// Keep what was decoded even when part of it failed, so that the
		// validator still sees the rest.
		p := reflect.New(t.Elem())
		ok := d.decode(n, p.Elem(), path, fi)
		if ok || t.Elem().Kind() == reflect.Struct {
			v.Set(p)
		}
		return ok
	case reflect.Slice:
		return d.decodeSlice(n, v, path)
	case reflect.Map:
		return d.decodeMap(n, v, path)
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	}
	panic(fmt.Sprintf("config: no decoder for %s at %s", t, path))
}

func (d *decoder) decodeBool(n ast.Node, v reflect.Value, path string) bool {
	text, ok := d.typedScalar(n, kindBool, path)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(text)
	if err != nil || (text != "true" && text != "false" && kindOf(n) == kindString) {
		d.fail(n, path, fmt.Sprintf("expected true or false, got %q", text), "")
		return false
	}
	v.SetBool(b)
	return true
}

func (d *decoder) decodeInt(n ast.Node, v reflect.Value, path string) bool {
	text, ok := d.typedScalar(n, kindInt, path)
	if !ok {
		return false
	}
	var i int64
	var err error
	if iv, isNode := n.(*ast.IntegerNode); isNode {
		switch x := iv.Value.(type) {
		case int64:
			i = x
		case uint64: // how the parser keeps positive integers
			i = int64(x)
			if x > math.MaxInt64 {
				err = errors.New("out of range")
			}
		}
	} else {
		i, err = strconv.ParseInt(text, 10, 64)
	}
	if err != nil {
		d.fail(n, path, fmt.Sprintf("expected an integer, got %q", text), "")
		return false
	}
	v.SetInt(i)
	return true
}

func (d *decoder) decodeFloat(n ast.Node, v reflect.Value, path string) bool {
	text, ok := d.typedScalar(n, kindFloat, path)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		d.fail(n, path, fmt.Sprintf("expected a finite number, got %q", text), "")
		return false
	}
	v.SetFloat(f)
	return true
}

// fail reports a value that cannot be used and keeps the validator quiet
// about it.
func (d *decoder) fail(n ast.Node, path, msg, hint string) {
	d.ps.markBad(path)
	d.ps.add(nodePos(n), path, msg, hint)
}

func (d *decoder) wrongKind(n ast.Node, path, want string, secret bool) {
	got := kindOf(n)
	hint := ""
	switch {
	case want == kindString && secret && got != kindMapping && got != kindSequence:
		hint = "quote it"
	case want == kindString && got != kindMapping && got != kindSequence:
		hint = fmt.Sprintf("quote it: %q", scalarText(n))
	case want == kindSequence && got == kindString:
		hint = "write a list: [" + strings.Join(strings.Fields(scalarText(n)), ", ") + "]"
	}
	d.fail(n, path, fmt.Sprintf("expected %s, got %s", article(want), article(got)), hint)
}

func article(kind string) string {
	switch kind {
	case kindNull:
		return "null"
	case "":
		return "nothing"
	}
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// stringValue is a scalar string after ${VAR} expansion. Numbers and
// booleans are refused rather than converted, because a value such as
// branch: 1.10 or branch: no silently becomes something else in YAML.
func (d *decoder) stringValue(n ast.Node, forceString bool, path string, fi *fieldInfo, secret bool) (string, bool) {
	kind := kindOf(n)
	if kind != kindString && !(forceString && kind != kindMapping && kind != kindSequence) {
		d.wrongKind(n, path, kindString, secret)
		return "", false
	}
	s, ok := d.expanded(n, path, secret)
	if !ok {
		return "", false
	}
	if fi != nil && len(fi.enum) > 0 && !slices.Contains(fi.enum, s) {
		hint := ""
		if m := closest(s, fi.enum); m != "" {
			hint = fmt.Sprintf("did you mean %q?", m)
		}
		d.fail(n, path, fmt.Sprintf("%q is not one of %s", s, strings.Join(fi.enum, ", ")), hint)
		return "", false
	}
	return s, true
}

// expanded resolves ${VAR} references in a string scalar. For a secret,
// the report does not quote the value, which may be a literal secret.
func (d *decoder) expanded(n ast.Node, path string, secret bool) (string, bool) {
	s := scalarText(n)
	if d.expand == nil || kindOf(n) != kindString {
		return s, true
	}
	out, _, err := d.expand(s)
	if err != nil {
		if secret && err.quotes {
			err = &expandError{msg: "the value holds a $ that is not a valid reference", hint: "write ${VAR}, ${VAR:-default}, or $$ for a literal $"}
		}
		d.fail(n, path, err.msg, err.hint)
		return "", false
	}
	return out, true
}

// typedScalar returns the text of a number or boolean. A string is
// accepted only when it holds a ${VAR} reference, whose expansion is then
// read as the number or boolean: the environment has no types.
func (d *decoder) typedScalar(n ast.Node, want, path string) (string, bool) {
	kind := kindOf(n)
	switch {
	case kind == want, want == kindFloat && kind == kindInt:
		return scalarText(n), true
	case kind == kindString && d.expand != nil && strings.Contains(scalarText(n), "${"):
		s, ok := d.expanded(n, path, false)
		return strings.TrimSpace(s), ok
	}
	d.wrongKind(n, path, want, false)
	return "", false
}

func (d *decoder) decodeDuration(n ast.Node, v reflect.Value, path string) bool {
	var text string
	switch kindOf(n) {
	case kindInt:
		text = scalarText(n)
	case kindString:
		s, ok := d.expanded(n, path, false)
		if !ok {
			return false
		}
		text = strings.TrimSpace(s)
	default:
		d.fail(n, path, fmt.Sprintf("expected a duration, got %s", article(kindOf(n))), `write Go syntax ("90s", "5m", "1h30m"), whole days ("90d") or a whole number of seconds`)
		return false
	}
	dur, err := parseDuration(text)
	if err != nil {
		d.fail(n, path, fmt.Sprintf("%q is not a duration", text), `write Go syntax ("90s", "5m", "1h30m"), whole days ("90d") or a whole number of seconds`)
		return false
	}
	v.SetInt(int64(dur))
	return true
}

// parseDuration reads Go syntax or a bare number of seconds.
func parseDuration(s string) (time.Duration, error) {
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("%d seconds is out of range", secs)
		}
		return time.Duration(secs) * time.Second, nil
	}
	// Days, for retention periods: "90d" (whole days only).
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseInt(days, 10, 64); err == nil {
			if n > math.MaxInt64/int64(24*time.Hour) || n < 0 {
				return 0, fmt.Errorf("%d days is out of range", n)
			}
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}

func (d *decoder) decodeSlice(n ast.Node, v reflect.Value, path string) bool {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.wrongKind(n, path, kindSequence, false)
		return false
	}
	out := reflect.MakeSlice(v.Type(), 0, len(seq.Values))
	all := true
	for i, elem := range seq.Values {
		p := indexPath(path, i)
		un, _ := d.unwrap(elem)
		d.note(p, nodePos(un), un)
		ev := reflect.New(v.Type().Elem()).Elem()
		if kindOf(un) == kindNull && v.Type().Elem().Kind() == reflect.String {
			d.fail(elem, p, "empty list item", "remove it or give it a value")
			all = false
			continue
		}
		if kindOf(un) == kindNull && v.Type().Elem().Kind() == reflect.Struct {
			// An empty item is an empty mapping: the required keys are then
			// reported rather than the item silently vanishing.
			d.decodeStructEntries(nil, nodePos(un), ev, p)
		} else if !d.decode(elem, ev, p, nil) {
			all = false
		}
		out = reflect.Append(out, ev)
	}
	v.Set(out)
	return all
}

func (d *decoder) note(path string, key position, val ast.Node) {
	if kindOf(val) == kindNull {
		return
	}
	k := kindOf(val)
	d.present[path] = presence{key: key, val: nodePos(val), scalar: k != kindMapping && k != kindSequence}
}

func (d *decoder) decodeMap(n ast.Node, v reflect.Value, path string) bool {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.wrongKind(n, path, kindMapping, false)
		return false
	}
	out := reflect.MakeMap(v.Type())
	elemType := v.Type().Elem()
	all := true
	for _, e := range d.entries(m, path, 0) {
		p := joinPath(path, e.name)
		un, _ := d.unwrap(e.val)
		d.note(p, nodePos(e.key), un)
		ev := reflect.New(elemType).Elem()
		structElem := elemType.Kind() == reflect.Struct || (elemType.Kind() == reflect.Pointer && elemType.Elem().Kind() == reflect.Struct)
		switch {
		case kindOf(un) == kindNull && structElem:
			// "production:" with nothing under it is an empty environment,
			// so its missing keys are reported where it was written.
			target := ev
			if elemType.Kind() == reflect.Pointer {
				ev.Set(reflect.New(elemType.Elem()))
				target = ev.Elem()
			}
			d.present[p] = presence{key: nodePos(e.key), val: nodePos(e.key)}
			d.decodeStructEntries(nil, nodePos(e.key), target, p)
		case kindOf(un) == kindNull:
			d.fail(e.key, p, "no value", "")
			all = false
			continue
		default:
			if !d.decode(e.val, ev, p, nil) {
				all = false
				if ev.IsZero() {
					continue
				}
			}
		}
		out.SetMapIndex(reflect.ValueOf(e.name), ev)
	}
	v.Set(out)
	return all
}

func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string) bool {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.wrongKind(n, path, kindMapping, false)
		return false
	}
	return d.decodeStructEntries(d.entries(m, path, 0), nodePos(m), v, path)
}

// decodeStructEntries fills a struct from the entries of a mapping at pos.
// Required keys that are missing are reported at pos: the mapping's own
// key when it has one, so the report points at "production:" rather than
// at whichever key happens to come first under it.
func (d *decoder) decodeStructEntries(es []entry, pos position, v reflect.Value, path string) bool {
	if p, ok := d.present[path]; ok {
		pos = p.key
	}
	fields, ok := d.fields[v.Type()]
	if !ok {
		fields = fieldsOf(v.Type())
		d.fields[v.Type()] = fields
	}
	byName := map[string]*fieldInfo{}
	names := make([]string, len(fields))
	for i := range fields {
		byName[fields[i].name] = &fields[i]
		names[i] = fields[i].name
	}
	all := true
	written := map[string]bool{}
	for _, e := range es {
		p := joinPath(path, e.name)
		fi := byName[e.name]
		if fi == nil {
			if v.Type() == configType && strings.HasPrefix(e.name, "x-") {
				continue // extension keys hold anchors for the rest of the file
			}
			hint := ""
			if m := closest(e.name, names); m != "" {
				hint = fmt.Sprintf("did you mean %q?", m)
			} else {
				hint = "known keys: " + strings.Join(names, ", ")
			}
			d.ps.add(nodePos(e.key), p, fmt.Sprintf("unknown key %q", e.name), hint)
			all = false
			continue
		}
		un, _ := d.unwrap(e.val)
		d.note(p, nodePos(e.key), un)
		if kindOf(un) != kindNull {
			written[e.name] = true
		}
		if !d.decode(e.val, v.Field(fi.index), p, fi) {
			all = false
		}
	}
	for _, fi := range fields {
		if fi.required && !written[fi.name] {
			d.ps.add(pos, joinPath(path, fi.name), "required key missing", fi.doc)
			d.ps.markBad(joinPath(path, fi.name))
			all = false
		}
	}
	return all
}
