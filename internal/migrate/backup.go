package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// backupPathToken is replaced in Config.Backup by the suggested file.
const backupPathToken = "{path}"

// Backup copies the database into destDir (created 0700 if missing) and
// returns the file written, named <database>-<UTC time>.<ext>:
//
//   - PostgreSQL: pg_dump --format=custom, connection given as PG*
//     environment variables so that no password shows in ps;
//   - SQLite: VACUUM INTO, a consistent copy taken while others may write;
//     "" and no error when the file does not exist yet (nothing to keep);
//   - Config.Backup: that argv instead, {path} replaced by the suggested
//     file (also $FRAISIER_BACKUP_PATH); it returns that file if the
//     command created it, else destDir.
func (m *Migrator) Backup(ctx context.Context, destDir string) (string, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	path, err := m.backup(ctx, destDir)
	return path, m.fail(ctx, "back up the database", err)
}

func (m *Migrator) backup(ctx context.Context, destDir string) (string, error) {
	if destDir == "" {
		return "", errors.New("no backup directory")
	}
	destDir, err := filepath.Abs(destDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(destDir, 0o700); err != nil {
		return "", err
	}
	stamp := m.cfg.Now().UTC().Format("20060102T150405Z")
	var u *dbURL
	if m.cfg.URL != "" {
		if u, err = parseDBURL(m.cfg.URL); err != nil {
			return "", fmt.Errorf("database URL: %w", err)
		}
	}
	if len(m.cfg.Backup) > 0 {
		name := "database"
		if u != nil {
			name = u.name()
		}
		return m.commandBackup(ctx, destDir, filepath.Join(destDir, name+"-"+stamp+".backup"))
	}
	if u == nil {
		return "", errors.New("no database URL to back up, and no backup command")
	}
	switch u.kind {
	case dbPostgres:
		return m.pgDump(ctx, u, filepath.Join(destDir, u.name()+"-"+stamp+".dump"))
	case dbSQLite:
		ext := filepath.Ext(u.path)
		if ext == "" {
			ext = ".db"
		}
		return m.vacuumInto(ctx, u.path, filepath.Join(destDir, u.name()+"-"+stamp+ext))
	}
	return "", fmt.Errorf("%w: no built-in backup for %s databases; configure a backup command", ErrUnsupported, u.scheme)
}

func (m *Migrator) pgDump(ctx context.Context, u *dbURL, path string) (string, error) {
	env, err := u.pgEnv()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("backup %s already exists", path)
	}
	m.say("pg_dump → %s", path)
	argv := []string{"pg_dump", "--format=custom", "--file", path}
	if _, err := m.run(ctx, argv, runOpts{stream: true, env: env, noURL: true}); err != nil {
		os.Remove(path)
		return "", err
	}
	// A dump holds the data; pg_dump creates it with the umask's mode.
	owner := os.Geteuid()
	if c := m.cfg.Credential; c != nil {
		owner = int(c.Uid)
	}
	if err := keepPrivate(path, owner); err != nil {
		return "", err
	}
	return path, nil
}

// vacuumInto copies a live SQLite database. The target is a bound
// parameter, so no path needs quoting into SQL.
func (m *Migrator) vacuumInto(ctx context.Context, src, path string) (string, error) {
	db, err := openSQLite(ctx, src, true)
	if errors.Is(err, errMissingDB) {
		m.say("no backup: %s does not exist yet", src)
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("backup %s already exists", path)
	}
	m.say("VACUUM INTO → %s", path)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("VACUUM INTO %s: %w", path, err)
	}
	if err := keepPrivate(path, os.Geteuid()); err != nil {
		return "", err
	}
	return path, nil
}

// keepPrivate gives the backup file at path mode 0600. The directory may
// be the deploy user's (pg_dump runs as user:), and that user may have put
// something else at path by the time fraisier, perhaps root, sets the
// mode: so the path is opened without following a symbolic link (nor
// blocking on a FIFO), and only a regular file owned by owner, the
// account that wrote the backup, is changed, through its descriptor. A
// hard link to another account's file is refused by its owner.
func keepPrivate(path string, owner int) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("backup %s is a symbolic link, not the file written", path)
	}
	if err != nil {
		return fmt.Errorf("open backup %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat backup %s: %w", path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fmt.Errorf("backup %s is not a regular file", path)
	}
	if int(st.Uid) != owner {
		return fmt.Errorf("backup %s is owned by uid %d, not by %d who wrote it", path, st.Uid, owner)
	}
	if err := syscall.Fchmod(fd, 0o600); err != nil {
		return fmt.Errorf("make backup %s private: %w", path, err)
	}
	return nil
}

func (m *Migrator) commandBackup(ctx context.Context, destDir, path string) (string, error) {
	argv := slices.Clone(m.cfg.Backup)
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, backupPathToken, path)
	}
	env := []string{"FRAISIER_BACKUP_PATH=" + path, "FRAISIER_BACKUP_DIR=" + destDir}
	if _, err := m.run(ctx, argv, runOpts{stream: true, env: env}); err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return destDir, nil
}
