package config

import (
	"fmt"
	"strings"
)

// expandError is a reference that cannot be expanded. It never holds the
// value of a variable, which may be a secret.
type expandError struct {
	msg, hint string
	// quotes is set when msg repeats text of the value itself.
	quotes bool
}

// expandEnv resolves references in one scalar value:
//
//	${VAR}            the variable; an error when it is unset
//	${VAR:-default}   default when VAR is unset or empty
//	${VAR-default}    default when VAR is unset
//	${VAR:?message}   an error saying message when VAR is unset or empty
//	${VAR?message}    an error saying message when VAR is unset
//	$$                a literal $
//
// A $ followed by a letter ($HOME) is an error rather than a literal,
// because it is almost always a reference missing its braces. Any other $
// is literal. Defaults are taken as written: they are not expanded again.
// It reports whether the value held a reference.
func expandEnv(s string, lookup func(string) (string, bool)) (string, bool, *expandError) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	refs := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", refs, &expandError{msg: "unterminated ${ in value", hint: "close it with }, or write $$ for a literal $"}
			}
			v, err := expandRef(s[i+2:i+2+end], lookup)
			if err != nil {
				return "", refs, err
			}
			b.WriteString(v)
			refs = true
			i += 2 + end
		case isNameStart(next):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name := s[i+1 : j]
			return "", refs, &expandError{
				msg:    fmt.Sprintf("$%s is not expanded", name),
				hint:   fmt.Sprintf("write ${%s}, or $$%s for a literal $", name, name),
				quotes: true,
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), refs, nil
}

// expandRef resolves the inside of one ${...}.
func expandRef(ref string, lookup func(string) (string, bool)) (string, *expandError) {
	n := 0
	for n < len(ref) && isNameChar(ref[n]) {
		n++
	}
	name, rest := ref[:n], ref[n:]
	if name == "" || !isNameStart(name[0]) {
		return "", &expandError{
			msg:    fmt.Sprintf("${%s} is not a valid reference", ref),
			hint:   "names are letters, digits and _, not starting with a digit; write $$ for a literal $",
			quotes: true,
		}
	}
	val, set := lookup(name)
	op, arg := rest, ""
	for _, o := range []string{":-", ":?", "-", "?"} {
		if strings.HasPrefix(rest, o) {
			op, arg = o, rest[len(o):]
			break
		}
	}
	switch op {
	case "":
		if !set {
			return "", &expandError{
				msg:  fmt.Sprintf("environment variable %s is not set", name),
				hint: fmt.Sprintf("export it, give a default with ${%s:-value}, or write $$ for a literal $", name),
			}
		}
		return val, nil
	case ":-":
		if val == "" {
			return arg, nil
		}
		return val, nil
	case "-":
		if !set {
			return arg, nil
		}
		return val, nil
	case ":?", "?":
		if set && (op == "?" || val != "") {
			return val, nil
		}
		state := "is not set"
		if op == ":?" {
			state = "is unset or empty"
		}
		msg := fmt.Sprintf("environment variable %s %s", name, state)
		if arg != "" {
			msg += ": " + arg
		}
		return "", &expandError{msg: msg}
	}
	return "", &expandError{
		msg:    fmt.Sprintf("${%s} is not a valid reference", ref),
		hint:   "use ${VAR}, ${VAR:-default} or ${VAR:?message}",
		quotes: true,
	}
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }
