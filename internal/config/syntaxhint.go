package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// syntaxHint says what most likely caused a YAML syntax error at pos,
// from the text around it, for the mistakes newcomers make most: a tab in
// the indentation, ${VAR} unquoted inside {...} or [...], a line indented
// to no key's column, and ": " inside a plain value. "" when none fits.
func syntaxHint(data []byte, pos position, msg string) string {
	lines := strings.Split(string(data), "\n")
	if pos.line < 1 || pos.line > len(lines) {
		return ""
	}
	if h := tabHint(lines, pos.line); h != "" {
		return h
	}
	if h := flowVarHint(lines[pos.line-1]); h != "" {
		return h
	}
	if strings.Contains(msg, "not allowed in this context") {
		return indentHint(lines, pos.line)
	}
	return ""
}

// tabHint finds a tab in the indentation of the lines up to the error.
func tabHint(lines []string, upTo int) string {
	for i, l := range lines[:upTo] {
		lead := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(lead, "\t") {
			return fmt.Sprintf("YAML indents with spaces, never tabs: replace the tab at the start of line %d with spaces", i+1)
		}
	}
	return ""
}

// flowVarHint finds ${VAR} unquoted after a { or [ on the line: inside
// {...} or [...] its braces are read as YAML's own.
func flowVarHint(line string) string {
	i := strings.Index(line, "${")
	if i < 0 || !strings.ContainsAny(line[:i], "{[") || strings.ContainsAny(line[:i], `"'`) {
		return ""
	}
	value := flowValue(line[i:])
	return fmt.Sprintf(`inside {...} or [...], quote a value holding ${VAR}: write "%s" (its braces are otherwise read as YAML's)`, value)
}

// flowValue is the plain value that starts s, up to the comma or closing
// bracket that ends it, the braces of ${...} included.
func flowValue(s string) string {
	depth := 0
	for i, c := range s {
		switch {
		case c == '{':
			depth++
		case c == '}' && depth > 0:
			depth--
		case depth == 0 && (c == ',' || c == '}' || c == ']'):
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// colonInValue is a "key: value" line whose plain value holds ": ".
var colonInValue = regexp.MustCompile(`^\s*(?:- )?[^\s:"'#][^:#]*: +[^\s"'{\[|>&*!][^#]*?: `)

// indentHint explains "value is not allowed in this context": a value
// holding ": ", a line indented further than a key that already has a
// value, or a line indented to a column no key above it starts at.
func indentHint(lines []string, at int) string {
	if l := lines[at-1]; colonInValue.MatchString(l) {
		key, value, _ := strings.Cut(strings.TrimSpace(l), ": ")
		return fmt.Sprintf(`a value holding ": " must be quoted: %s: "%s"`, key, strings.TrimSpace(value))
	}
	for _, n := range []int{at, at + 1} {
		if n > len(lines) {
			break
		}
		prev := previousLine(lines, n)
		if prev == 0 || blank(lines[n-1]) {
			continue
		}
		ind, pind := indentOf(lines[n-1]), indentOf(lines[prev-1])
		if ind > pind && hasValue(lines[prev-1]) {
			return fmt.Sprintf("line %d is indented further than line %d, whose key already has a value: start it in the column of that key, or of the key it belongs to", n, prev)
		}
		if ind <= pind && !slices.Contains(keyColumns(lines, n), ind) {
			return fmt.Sprintf("line %d is indented %d spaces, the column of no key above it: keys of one mapping start in the same column", n, ind)
		}
	}
	return "check the indentation of this line and the ones above: keys of one mapping start in the same column, and a key's own keys further right"
}

// previousLine is the number of the last line before n holding YAML, or 0.
func previousLine(lines []string, n int) int {
	for p := n - 1; p >= 1; p-- {
		if !blank(lines[p-1]) {
			return p
		}
	}
	return 0
}

func blank(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// hasValue reports whether a "key: value" line has its value on the line
// (so that nothing may be nested under it).
func hasValue(l string) bool {
	t := strings.TrimPrefix(strings.TrimSpace(l), "- ")
	_, v, ok := strings.Cut(t, ": ")
	v = strings.TrimSpace(v)
	return ok && v != "" && !strings.HasPrefix(v, "#") && !strings.HasPrefix(v, "&") && v != "|" && v != ">"
}

// keyColumns are the columns a line at n could start at: those of the
// line above and of each less indented line before it, plus the column of
// the keys inside a "- " item.
func keyColumns(lines []string, n int) []int {
	var cols []int
	limit := -1
	for p := previousLine(lines, n); p >= 1; p = previousLine(lines, p) {
		ind := indentOf(lines[p-1])
		if limit >= 0 && ind >= limit {
			continue
		}
		cols = append(cols, ind)
		if strings.HasPrefix(strings.TrimSpace(lines[p-1]), "- ") {
			cols = append(cols, ind+2)
		}
		limit = ind
		if ind == 0 {
			break
		}
	}
	return cols
}
