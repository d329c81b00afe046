package config

import (
	"fmt"
	"regexp"
	"strconv"
)

// accountPattern is the shape of a user or group: a name as useradd and
// systemd accept it (letters, digits, _ . -, not starting with a digit, -
// or ., a trailing $ for machine accounts), or a numeric id. Whether it
// exists is checked when a deployment runs, on the host that runs it.
const accountPattern = `^([A-Za-z_][A-Za-z0-9_.-]*[$]?|[0-9]+)$`

// maxAccountLen is the longest user or group name Linux tools accept.
const maxAccountLen = 32

var accountRE = regexp.MustCompile(accountPattern)

// checkAccount checks the user or group written at path.
func (l *loader) checkAccount(path, key, s string) {
	switch {
	case len(s) > maxAccountLen:
		l.report(path, fmt.Sprintf("%s is longer than %d characters", key, maxAccountLen), "")
	case !accountRE.MatchString(s):
		l.report(path, fmt.Sprintf("%s %q is not a %s name or a numeric id", key, s, key),
			"a name uses letters, digits, _ . and -, and starts with a letter or _; an id is a number such as 1001")
	case s[0] >= '0' && s[0] <= '9':
		// 4294967295 is (uid_t)-1, which the kernel reads as "unchanged".
		if id, err := strconv.ParseUint(s, 10, 32); err != nil || id == 1<<32-1 {
			l.report(path, fmt.Sprintf("%s id %s is out of range", key, s), "ids go up to 4294967294")
		}
	}
}
