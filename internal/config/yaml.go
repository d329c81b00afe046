package config

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The YAML tree as the decoder reads it: the one document of the file,
// where each node was written, anchors and aliases, tags and << merges.

type position struct{ line, col int }

// parse turns data into the AST of its single document, or reports a
// syntax problem.
func parse(ps *problems, data []byte) (body ast.Node, ok bool) {
	defer func() {
		// A parser bug must not take the whole program down with it: the
		// file is reported as unreadable instead.
		if r := recover(); r != nil {
			ps.add(position{}, "", fmt.Sprintf("YAML parser failed: %v", r), "")
			body, ok = nil, false
		}
	}()
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		msg := err.Error()
		var pos position
		if e, isYAML := err.(interface {
			GetMessage() string
			GetToken() *token.Token
		}); isYAML {
			msg = e.GetMessage()
			if tk := e.GetToken(); tk != nil {
				pos = tokenPos(tk)
			}
		}
		ps.add(pos, "", "YAML syntax error: "+msg, syntaxHint(data, pos, msg))
		return nil, false
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	switch len(docs) {
	case 0:
		return nil, true
	case 1:
		return docs[0].Body, true
	}
	ps.add(nodePos(docs[1].Body), "", "the file holds several YAML documents; fraisier reads one", "remove the second --- and what follows it")
	return nil, false
}

func tokenPos(tk *token.Token) position {
	if tk == nil || tk.Position == nil {
		return position{}
	}
	return position{tk.Position.Line, tk.Position.Column}
}

// nodePos is where a node starts in the file. Mappings report their first
// key, because their own token is the first colon.
func nodePos(n ast.Node) position {
	switch n := n.(type) {
	case nil:
		return position{}
	case *ast.MappingNode:
		if len(n.Values) > 0 && !n.IsFlowStyle {
			return nodePos(n.Values[0].Key)
		}
		return tokenPos(n.Start)
	case *ast.MappingValueNode:
		return nodePos(n.Key)
	case *ast.LiteralNode:
		return tokenPos(n.Start)
	case *ast.SequenceNode:
		return tokenPos(n.Start)
	}
	return tokenPos(n.GetToken())
}

// collectAliases resolves every alias to the node its anchor names, in
// document order as YAML requires. An anchor is registered only after its
// own value has been walked, so an alias inside the value it names is
// "unknown" rather than a cycle.
func (d *decoder) collectAliases(n ast.Node, anchors map[string]ast.Node) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			d.collectAliases(mv, anchors)
		}
	case *ast.MappingValueNode:
		d.collectAliases(n.Key, anchors)
		d.collectAliases(n.Value, anchors)
	case *ast.MappingKeyNode:
		d.collectAliases(n.Value, anchors)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			d.collectAliases(v, anchors)
		}
	case *ast.TagNode:
		d.collectAliases(n.Value, anchors)
	case *ast.AnchorNode:
		d.collectAliases(n.Value, anchors)
		if n.Name != nil {
			anchors[n.Name.GetToken().Value] = n.Value
		}
	case *ast.AliasNode:
		name := ""
		if n.Value != nil {
			name = n.Value.GetToken().Value
		}
		if target, ok := anchors[name]; ok {
			d.aliases[n] = target
		} else {
			d.ps.add(nodePos(n), "", fmt.Sprintf("alias *%s names no anchor defined before it", name), "define &"+name+" earlier in the file")
		}
	}
}

// unwrap follows anchors, aliases and tags to the node that holds the
// value. It reports whether a !!str tag asked for the value as a string.
func (d *decoder) unwrap(n ast.Node) (ast.Node, bool) {
	forceString := false
	for range 64 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.AliasNode:
			n = d.aliases[v] // nil when unknown: already reported, decoded as null
		case *ast.TagNode:
			if v.Start != nil && v.Start.Value == "!!str" {
				forceString = true
			}
			n = v.Value
		default:
			return n, forceString
		}
	}
	return nil, false
}

// scalar kinds, as YAML resolved them.
const (
	kindNull     = "null"
	kindString   = "string"
	kindInt      = "integer"
	kindFloat    = "number"
	kindBool     = "boolean"
	kindMapping  = "mapping"
	kindSequence = "list"
)

func kindOf(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return kindNull
	case *ast.StringNode, *ast.LiteralNode:
		return kindString
	case *ast.IntegerNode:
		return kindInt
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return kindFloat
	case *ast.BoolNode:
		return kindBool
	case *ast.MappingNode:
		return kindMapping
	case *ast.SequenceNode:
		return kindSequence
	}
	return "value"
}

// scalarText is the text of a scalar node as written (for strings, after
// unquoting).
func scalarText(n ast.Node) string {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value
	case *ast.LiteralNode:
		if n.Value != nil {
			return n.Value.Value
		}
		return ""
	case nil:
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// entry is one key of a mapping and its value.
type entry struct {
	name string
	key  ast.Node
	val  ast.Node
}

// entries lists the keys of a mapping with its << merges applied: keys
// written in the mapping win over merged ones, and earlier merge sources
// win over later ones, as in YAML 1.1.
func (d *decoder) entries(m *ast.MappingNode, path string, depth int) []entry {
	// A mapping merged from many places is flattened once: without this,
	// merges of merges cost exponential time.
	if es, ok := d.flat[m]; ok {
		return es
	}
	es := d.flatten(m, path, depth)
	d.flat[m] = es
	return es
}

func (d *decoder) flatten(m *ast.MappingNode, path string, depth int) []entry {
	var out []entry
	index := map[string]bool{}
	firstAt := map[string]position{}
	var merges []ast.Node
	for _, mv := range m.Values {
		if mv.Key != nil && mv.Key.IsMergeKey() {
			merges = append(merges, mv.Value)
			continue
		}
		k, ok := d.keyString(mv.Key)
		if !ok {
			d.ps.add(nodePos(mv.Key), path, fmt.Sprintf("a key must be a string, not %s", article(kindOf(mv.Key))), "")
			continue
		}
		if index[k] {
			first := firstAt[k]
			d.ps.add(nodePos(mv.Key), joinPath(path, k), fmt.Sprintf("duplicate key %q", k),
				fmt.Sprintf("first written at line %d, column %d; the second would be ignored", first.line, first.col))
			continue
		}
		index[k] = true
		firstAt[k] = nodePos(mv.Key)
		out = append(out, entry{name: k, key: mv.Key, val: mv.Value})
	}
	if depth > 32 {
		return out
	}
	for _, mn := range merges {
		un, _ := d.unwrap(mn)
		var sources []ast.Node
		if seq, ok := un.(*ast.SequenceNode); ok {
			sources = seq.Values
		} else {
			sources = []ast.Node{mn}
		}
		for _, src := range sources {
			sm, _ := d.unwrap(src)
			mapping, ok := sm.(*ast.MappingNode)
			if !ok {
				d.ps.add(nodePos(src), path, fmt.Sprintf("<< merges a mapping or a list of mappings, not %s", article(kindOf(sm))), "write <<: *anchor where &anchor names a mapping")
				continue
			}
			for _, e := range d.entries(mapping, path, depth+1) {
				if !index[e.name] {
					index[e.name] = true
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func (d *decoder) keyString(k ast.Node) (string, bool) {
	if mk, ok := k.(*ast.MappingKeyNode); ok {
		k = mk.Value
	}
	k, _ = d.unwrap(k)
	switch kindOf(k) {
	case kindMapping, kindSequence, kindNull:
		return "", false
	}
	return scalarText(k), true
}
