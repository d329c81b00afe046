package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func (d *deployment) migrate(ctx context.Context, out io.Writer) (string, error) {
	m, err := d.c.NewMigrator(d.env, d.releasePath, out)
	if err != nil {
		return "", err
	}
	before, err := m.Current(ctx)
	if err != nil {
		return "", fmt.Errorf("read current revision: %w", err)
	}
	d.migrator, d.revBefore = m, d.revisionToKeep(ctx, before, out)
	if db := d.env.Database; db.BackupBeforeDeploy {
		dir := d.backupDir()
		// Written by the backup command, which runs as the environment's
		// user; the default directory is fraisier's to give.
		if err := d.as.ownDir(dir, os.Geteuid(), db.BackupDir == ""); err != nil {
			return "from " + orDash(before), fmt.Errorf("backup before migrating: %w", err)
		}
		path, err := m.Backup(ctx, dir)
		if err != nil {
			return "from " + orDash(before), fmt.Errorf("backup before migrating: %w", err)
		}
		fmt.Fprintf(out, "backup of the database at %s written to %s\n", orDash(before), orDash(path))
		d.backup = path
	}
	var after string
	if d.env.Database.Strategy == "rebuild" {
		// Only reachable on unprotected environments: config validation
		// and the migrator both refuse it on protected ones.
		err = m.Rebuild(ctx)
		if err == nil {
			after, err = m.Current(ctx)
		}
		d.migrated = true
		if err == nil {
			err = d.recordRevision(after)
		}
		if err != nil {
			return "rebuild from " + orDash(before), err
		}
		return "rebuilt from scratch: " + orDash(before) + " → " + orDash(after) + backupNote(d.backup), nil
	}
	after, err = m.Up(ctx)
	// Even a failed Up may have applied some migrations: compensation must
	// consider the database changed.
	d.migrated = true
	if err != nil {
		return "from " + orDash(before), err
	}
	if after == d.revBefore {
		d.migrated = false
	}
	if err := d.recordRevision(after); err != nil {
		return orDash(before) + " → " + orDash(after), err
	}
	if after == before {
		return "already at " + orDash(after) + backupNote(d.backup), nil
	}
	return orDash(before) + " → " + orDash(after) + backupNote(d.backup), nil
}

// recordRevision keeps on the release the revision its migrations reached:
// a later rollback to it migrates down to exactly that. An inplace
// checkout has no releases to return to, so nothing to keep.
func (d *deployment) recordRevision(rev string) error {
	if d.inplace() {
		return nil
	}
	return d.e.Store.SetReleaseRevision(d.rec.record, d.t, d.release, rev)
}

func backupNote(path string) string {
	if path == "" {
		return ""
	}
	return "; backup " + path
}

// backupDir is database.backup_dir, or a backups directory fraisier keeps
// beside the releases (beside app_path for an inplace checkout, so that the
// project's tree never holds database dumps).
func (d *deployment) backupDir() string {
	if dir := d.env.Database.BackupDir; dir != "" {
		return dir
	}
	if d.inplace() {
		return filepath.Join(filepath.Dir(d.appPath), "."+filepath.Base(d.appPath)+".fraisier-backups")
	}
	return filepath.Join(d.appPath, "backups")
}
