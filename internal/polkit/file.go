package polkit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/fraiseql/fraisier/internal/systemd"
)

// WriteRule installs a rule at path (mode 0644) unless the file holds
// exactly content already, and reports whether it changed. polkitd
// rereads its rules when a file in its directories changes, so an
// unchanged rule is not rewritten. The file is replaced atomically,
// through a hidden temporary file whose name does not end in ".rules"
// (polkitd reads only those): polkitd never reads half a rule, and a
// failure leaves the old rule in place. The directory must exist: it is
// polkit's, and missing means polkit is not installed.
func WriteRule(path string, content []byte) (changed bool, err error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, content) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read the installed rule %s: %w", path, err)
	}
	if err := systemd.ReplaceFile(path, content, 0o644); err != nil {
		return false, fmt.Errorf("write the rule %s: %w", path, err)
	}
	return true, nil
}
