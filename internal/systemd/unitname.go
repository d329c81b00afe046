package systemd

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidUnitName is wrapped by every unit-name rejection.
var ErrInvalidUnitName = errors.New("invalid unit name")

// maxUnitName is systemd's UNIT_NAME_MAX (256) less its terminating NUL.
const maxUnitName = 255

// unitSuffixes are the unit types fraisier manages.
var unitSuffixes = []string{".service", ".timer", ".socket", ".target"}

var unitNameChars = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+$`)

// ValidateUnitName checks a unit name before it reaches an argv or a file
// path: systemd's own character set, a known suffix, no leading "-" (an
// option to systemctl) or "." (a hidden file, which is what WriteUnit's
// temporary files look like) and no path separators.
func ValidateUnitName(name string) error {
	reject := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidUnitName, name, why)
	}
	switch {
	case name == "":
		return reject("empty")
	case len(name) > maxUnitName:
		return reject(fmt.Sprintf("longer than %d bytes", maxUnitName))
	case !unitNameChars.MatchString(name):
		return reject(`only letters, digits and ":_.\@-" are allowed`)
	case name[0] == '-' || name[0] == '.':
		return reject(`must not start with "-" or "."`)
	}
	suffix := ""
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s) {
			suffix = s
		}
	}
	if suffix == "" {
		return reject("suffix must be one of " + strings.Join(unitSuffixes, ", "))
	}
	stem := strings.TrimSuffix(name, suffix)
	if stem == "" {
		return reject("nothing before the suffix")
	}
	if at := strings.IndexByte(stem, '@'); at == 0 || strings.Count(stem, "@") > 1 {
		return reject(`"@" must follow a template name, once`)
	}
	return nil
}

func validateUnitNames(units []string) error {
	if len(units) == 0 {
		return errors.New("no unit given")
	}
	for _, u := range units {
		if err := ValidateUnitName(u); err != nil {
			return err
		}
	}
	return nil
}
