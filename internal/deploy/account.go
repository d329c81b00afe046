package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/fraiseql/fraisier/internal/config"
)

// account is the user an environment's own commands run as (install,
// migrations and backups, scripts, run_after_deploy, a health command, its
// jobs), set by its user: and group:, so that the code deployed never runs
// with fraisier's rights. The zero account, for an environment with
// neither, is fraisier's own user.
type account struct {
	// name and group say who, for messages and unit files.
	name, group string
	uid, gid    uint32
	groups      []uint32
	home        string
	// switchTo: the commands must switch to this account; false when it is
	// fraisier's own (a non-root fraisier naming itself).
	switchTo bool
}

// resolveAccount looks the environment's user and group up on this host,
// at deploy time: the configuration may be written before the user is
// created, and a user may be removed later. A fraisier that is not root
// can only name itself.
func resolveAccount(env *config.Environment, euid, egid int) (account, error) {
	if env.User == "" && env.Group == "" {
		return account{}, nil
	}
	u, err := lookupUser(orDefaultString(env.User, strconv.Itoa(euid)))
	if err != nil {
		return account{}, err
	}
	a := account{name: u.Username, home: u.HomeDir}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	a.uid = uint32(uid)
	gidText := u.Gid
	if env.Group != "" {
		g, err := lookupGroup(env.Group)
		if err != nil {
			return account{}, err
		}
		gidText, a.group = g.Gid, g.Name
	} else if g, err := user.LookupGroupId(u.Gid); err == nil {
		a.group = g.Name
	} else {
		a.group = u.Gid
	}
	gid, err := strconv.ParseUint(gidText, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("group %s: gid %q: %w", a.group, gidText, err)
	}
	a.gid = uint32(gid)
	// The user's supplementary groups, as login and systemd's User= give
	// them: a deploy user in a www-data group keeps it.
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(a.groups, uint32(n)) {
				a.groups = append(a.groups, uint32(n))
			}
		}
	}
	switch {
	case euid == 0:
		a.switchTo = true
	case int(a.uid) != euid:
		return account{}, fmt.Errorf("user: %s: fraisier runs as %s, not as root, and cannot run commands as another user; run fraisier as root, or leave user: out", a.name, accountName(uint32(euid)))
	case int(a.gid) != egid:
		return account{}, fmt.Errorf("group: %s: fraisier runs as %s, not as root, and cannot switch to another group; run fraisier as root, or leave group: out", a.group, accountName(uint32(euid)))
	}
	return a, nil
}

func orDefaultString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// lookupUser finds a user by name, or by id when the name is a number.
func lookupUser(name string) (*user.User, error) {
	var u *user.User
	var err error
	if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	var unknownName user.UnknownUserError
	var unknownID user.UnknownUserIdError
	switch {
	case errors.As(err, &unknownID):
		return nil, fmt.Errorf("user: no user has id %s on this host: create one, or fix the environment's user:", name)
	case errors.As(err, &unknownName):
		return nil, fmt.Errorf("user: %s does not exist on this host: create it (useradd --system %s), or fix the environment's user:", name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up user %s: %w", name, err)
	}
	return u, nil
}

// lookupGroup finds a group by name, or by id when the name is a number.
func lookupGroup(name string) (*user.Group, error) {
	var g *user.Group
	var err error
	if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
		g, err = user.LookupGroupId(name)
	} else {
		g, err = user.LookupGroup(name)
	}
	var unknownName user.UnknownGroupError
	var unknownID user.UnknownGroupIdError
	switch {
	case errors.As(err, &unknownID):
		return nil, fmt.Errorf("group: no group has id %s on this host: create one, or fix the environment's group:", name)
	case errors.As(err, &unknownName):
		return nil, fmt.Errorf("group: %s does not exist on this host: create it (groupadd --system %s), or fix the environment's group:", name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up group %s: %w", name, err)
	}
	return g, nil
}

// credential is what execx switches a child to; nil runs it as fraisier.
func (a account) credential() *syscall.Credential {
	if !a.switchTo {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: slices.Clone(a.groups)}
}

// env is the part of a child's environment that says who it runs as, so
// that tools writing caches or reading dotfiles (pip, npm, ssh) look in
// the account's home, not fraisier's.
func (a account) env() []string {
	if !a.switchTo {
		return nil
	}
	return []string{"HOME=" + a.home, "USER=" + a.name, "LOGNAME=" + a.name}
}

// chownTree gives dir and everything in it to the account, symlinks
// themselves rather than what they point at, through an os.Root so that
// nothing outside dir is touched whatever the tree holds. It is done
// after the release is exported and its shared entries linked, before
// install runs in it as the account.
func (a account) chownTree(dir string) error {
	if !a.switchTo {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("give %s to %s: %w", filepath.Base(dir), a.name, err)
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(p, int(a.uid), int(a.gid))
	})
	if err != nil {
		return fmt.Errorf("give %s to %s: %w", filepath.Base(dir), a.name, err)
	}
	return nil
}

// ownDir makes dir, when missing, a directory of the account's (0700). An
// existing one fraisier owns is given to the account only when adopt says
// it is fraisier's own (the default backups directory): a directory the
// operator named keeps its owner, and a command that cannot write there
// says so. The backup directory is one: the backup command runs as the
// account.
func (a account) ownDir(dir string, euid int, adopt bool) error {
	if !a.switchTo {
		return nil
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		adopt = true
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		if fi, err = os.Lstat(dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	} else if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	if adopt && int(ownerOf(fi)) == euid && ownerOf(fi) != a.uid {
		if err := os.Lchown(dir, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("give %s to %s: %w", dir, a.name, err)
		}
	}
	return nil
}

// sameAs refuses an environment that shares the code of code when its
// commands would run as another account than code's: they run in code's
// release, which code's account can change, and must not run with any
// other account's rights.
func (a account) sameAs(code *config.Environment, euid, egid int) error {
	theirs, err := resolveAccount(code, euid, egid)
	if err != nil {
		return fmt.Errorf("%s, whose code this environment runs: %w", code.ID(), err)
	}
	uid, gid := a.runsAs(euid, egid)
	tuid, tgid := theirs.runsAs(euid, egid)
	if uid == tuid && gid == tgid {
		return nil
	}
	return fmt.Errorf("%s runs as %s and this environment as %s: both run %s's release, which its account can change, so both must run as that account; %s",
		code.ID(), theirs.words(), a.words(), code.ID(), accountFix(code))
}

// runsAs is the uid and gid the account's commands run with.
func (a account) runsAs(euid, egid int) (uint32, uint32) {
	if a.switchTo {
		return a.uid, a.gid
	}
	return uint32(euid), uint32(egid)
}

// words says who the account is, for messages.
func (a account) words() string {
	switch {
	case !a.switchTo:
		return "fraisier's own user"
	case a.group == "":
		return "user " + a.name
	}
	return "user " + a.name + " in group " + a.group
}

// accountFix says what an environment that shares code's release must
// say of its account to run as code's.
func accountFix(code *config.Environment) string {
	return "give this environment " + accountKeys(code.User, code.Group) + ", as " + code.ID() + " has"
}

// accountKeys is user: and group: as written: "user: deploy and no group:".
func accountKeys(user, group string) string {
	keys := []string{"no user:", "no group:"}
	if user != "" {
		keys[0] = "user: " + user
	}
	if group != "" {
		keys[1] = "group: " + group
	}
	return strings.Join(keys, " and ")
}

// supports refuses an environment whose commands the account cannot run
// as promised by user:.
func (a account) supports(env *config.Environment) error {
	if !a.switchTo {
		return nil
	}
	switch {
	case env.Layout == config.LayoutInplace:
		// The checkout is written by fraisier into app_path itself, which
		// must stay fraisier's; install would have nowhere to write.
		return fmt.Errorf("user: %s needs the releases layout: an inplace checkout cannot be handed to another user (use layout: releases)", a.name)
	case env.Fraise != nil && env.Fraise.Type == config.TypeScheduled && env.Scope != "system":
		return fmt.Errorf("user: %s needs scope: system for scheduled jobs: a user manager runs units as its own user only", a.name)
	case env.Database != nil && inProcessSQLite(env.Database):
		// Refused rather than run as fraisier while user: says otherwise.
		return fmt.Errorf("user: %s: the sql tool and the built-in backup work on a SQLite database from inside fraisier, as %s, not as the user; migrate with tool: command (or alembic, django) and give backup: a command, or leave user: out",
			a.name, accountName(uint32(os.Geteuid())))
	}
	return nil
}

// inProcessSQLite says whether fraisier itself, not a tool it starts,
// would open db's SQLite file: the sql tool does, and so does the built-in
// backup (VACUUM INTO) when no backup command is given.
func inProcessSQLite(db *config.Database) bool {
	if !strings.HasPrefix(db.URL.Reveal(), "sqlite:") {
		return false
	}
	return db.Tool == "sql" || (db.BackupBeforeDeploy && db.Backup == nil)
}
