package polkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fraiseql/fraisier/internal/systemd"
)

// ActionManageUnits is systemd's polkit action for jobs on a unit (start,
// stop, restart...) and for reset-failed; systemd passes the unit and the
// verb as the details "unit" and "verb".
const ActionManageUnits = "org.freedesktop.systemd1.manage-units"

// DefaultUser is the system user the package creates and serve runs as.
const DefaultUser = "fraisier"

// DefaultPath is where the rule is installed: /etc, so that the package
// manager never replaces it, and 50, so that a site's rules numbered
// lower are read first and can refuse what this one would allow.
const DefaultPath = "/etc/polkit-1/rules.d/50-fraisier.rules"

// Verbs are the manage-units verbs a deployment of a service environment
// uses: start (a socket unit not listening yet, restart: socket), restart
// (which also starts a stopped unit), reload (nginx's unit, restart:
// blue_green), stop (a rollback to no release, a drained colour), and
// reset-failed (a unit that hit its start limit is reset and restarted
// once more).
func Verbs() []string { return []string{"start", "restart", "reload", "stop", "reset-failed"} }

// ErrInvalidUser is wrapped when a user name cannot be put in a rule.
var ErrInvalidUser = errors.New("invalid user name")

// maxUser is the longest user name useradd accepts on Linux.
const maxUser = 32

// userName is the portable POSIX user name, not starting with "-" (nor a
// digit, which would read as a uid).
var userName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// ValidateUser checks a user name before it goes into a rule.
func ValidateUser(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidUser)
	case len(name) > maxUser:
		return fmt.Errorf("%w %q: longer than %d bytes", ErrInvalidUser, name, maxUser)
	case !userName.MatchString(name):
		return fmt.Errorf("%w %q: a user name is a letter or _ followed by letters, digits and ._-", ErrInvalidUser, name)
	}
	return nil
}

// Grant is what a rule allows: User may run Verbs() on Units of the
// system manager. Source names the configuration the units come from, in
// the rule's header.
type Grant struct {
	User   string
	Units  []string
	Source string
}

// Render returns the polkit rule (JavaScript) for g. Every name from the
// configuration is validated first and written as a JSON string literal,
// which JavaScript reads as the same string: nothing in a name can end
// the literal or the comment it appears in. Units are sorted and listed
// once; with none, the rule allows nothing.
func Render(g Grant) ([]byte, error) {
	if err := ValidateUser(g.User); err != nil {
		return nil, fmt.Errorf("render polkit rule: %w", err)
	}
	units := slices.Clone(g.Units)
	slices.Sort(units)
	units = slices.Compact(units)
	for _, u := range units {
		if err := systemd.ValidateUnitName(u); err != nil {
			return nil, fmt.Errorf("render polkit rule: %w", err)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Written by `fraisier install polkit` from %s;\n", literal(g.Source))
	b.WriteString("// rewritten when that file changes: edit it, not this.\n//\n")
	fmt.Fprintf(&b, "// The user %s may %s the system units listed\n", literal(g.User), strings.Join(Verbs(), ", "))
	b.WriteString("// below, and nothing else: any other request is left to the other rules\n")
	b.WriteString("// and to polkit's defaults.\n")
	b.WriteString("polkit.addRule(function (action, subject) {\n")
	fmt.Fprintf(&b, "    var user = %s;\n", literal(g.User))
	if len(units) == 0 {
		b.WriteString("    var units = [];\n")
	} else {
		b.WriteString("    var units = [\n")
		for i, u := range units {
			sep := ","
			if i == len(units)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "        %s%s\n", literal(u), sep)
		}
		b.WriteString("    ];\n")
	}
	fmt.Fprintf(&b, "    var verbs = %s;\n", literal(Verbs()))
	fmt.Fprintf(&b, "    if (action.id === %s &&\n", literal(ActionManageUnits))
	b.WriteString("        subject.user === user &&\n")
	b.WriteString("        units.indexOf(action.lookup(\"unit\")) >= 0 &&\n")
	b.WriteString("        verbs.indexOf(action.lookup(\"verb\")) >= 0) {\n")
	b.WriteString("        return polkit.Result.YES;\n")
	b.WriteString("    }\n")
	b.WriteString("    return polkit.Result.NOT_HANDLED;\n")
	b.WriteString("});\n")
	return b.Bytes(), nil
}

// literal is v as JSON, which is JavaScript: Go's encoder escapes control
// characters, quotes, backslashes, <, >, & and the line separators
// U+2028 and U+2029, so the result is one line that ends where it should.
func literal(v any) string {
	b, _ := json.Marshal(v) // strings and lists of strings always marshal
	return string(b)
}
