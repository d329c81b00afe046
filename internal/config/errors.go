package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string
	// Line and Col are 1-based; 0 when the problem has no position (an
	// empty file, say).
	Line, Col int
	// Path names the key in dotted form, e.g.
	// fraises.api.environments.production.branch or ...jobs[1].schedule.
	Path    string
	Message string
	Hint    string
}

// String renders the problem as file:line:col: path: message (hint: ...).
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Error is every problem found in a configuration file. Load returns it
// (wrapped or not); callers get the list with errors.As.
type Error struct {
	Problems []Problem
}

// Error renders the problems one per line, sorted by position.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems while a file is decoded and validated.
type problems struct {
	file string
	list []Problem
	// warnings are things that load but deserve the operator's attention
	// (Config.Warnings).
	warnings []Problem
	// bad holds paths whose value could not be decoded: the validator stays
	// quiet about them and everything under them, so one typo is reported
	// once rather than as a cascade.
	bad map[string]bool
}

func (ps *problems) add(pos position, path, msg, hint string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: pos.line, Col: pos.col, Path: path, Message: msg, Hint: hint})
}

func (ps *problems) warn(pos position, path, msg, hint string) {
	ps.warnings = append(ps.warnings, Problem{File: ps.file, Line: pos.line, Col: pos.col, Path: path, Message: msg, Hint: hint})
}

// sortedWarnings returns the warnings in file order.
func (ps *problems) sortedWarnings() []Problem {
	list := slices.Clone(ps.warnings)
	slices.SortStableFunc(list, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), cmp.Compare(a.Path, b.Path))
	})
	return list
}

func (ps *problems) markBad(path string) {
	if ps.bad == nil {
		ps.bad = map[string]bool{}
	}
	ps.bad[path] = true
}

// covered reports whether path or one of its ancestors failed to decode.
func (ps *problems) covered(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if ps.bad[p] {
			return true
		}
	}
	return false
}

// err sorts and de-duplicates the problems and returns them as an *Error, or
// nil when there are none. A value reached through several aliases is
// reported once, at its own position, under the first path that reached it.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	// The last element of the path tells apart two keys missing from one
	// mapping, which share a position and a message.
	type key struct {
		line, col int
		msg, last string
	}
	seen := map[key]bool{}
	out := list[:0]
	for _, p := range list {
		last := p.Path[strings.LastIndexByte(p.Path, '.')+1:]
		k := key{p.Line, p.Col, p.Message, last}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return &Error{Problems: out}
}

// parentPath strips the last element of a dotted path: a.b[2] → a.b, a.b → a.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
