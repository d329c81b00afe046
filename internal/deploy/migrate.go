package deploy

import (
	"context"
	"errors"
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
	keep := d.revisionToKeep(ctx, before, out)
	var backup string
	if db := d.env.Database; db.BackupBeforeDeploy {
		dir := d.backupDir()
		// Written by the backup command, which runs as the environment's
		// user; the default directory is fraisier's to give.
		if err := d.as.ownDir(dir, os.Geteuid(), db.BackupDir == ""); err != nil {
			return "from " + orDash(before), fmt.Errorf("backup before migrating: %w", err)
		}
		if backup, err = m.Backup(ctx, dir); err != nil {
			return "from " + orDash(before), fmt.Errorf("backup before migrating: %w", err)
		}
		fmt.Fprintf(out, "backup of the database at %s written to %s\n", orDash(before), orDash(backup))
	}
	// Even a failed Up or Rebuild may have changed the database: from here
	// the compensation must take it back.
	d.done.database = d.downAgain(m, keep)
	if d.env.Database.Strategy == "rebuild" {
		// Only reachable on unprotected environments: config validation
		// and the migrator both refuse it on protected ones.
		err := m.Rebuild(ctx)
		var after string
		if err == nil {
			after, err = m.Current(ctx)
		}
		if err == nil {
			err = d.recordRevision(after)
		}
		if err != nil {
			return "rebuild from " + orDash(before), err
		}
		return "rebuilt from scratch: " + orDash(before) + " → " + orDash(after) + backupNote(backup), nil
	}
	after, err := m.Up(ctx)
	if err != nil {
		return "from " + orDash(before), err
	}
	if after == keep {
		d.done.database = nil
	}
	if err := d.recordRevision(after); err != nil {
		return orDash(before) + " → " + orDash(after), err
	}
	if after == before {
		return "already at " + orDash(after) + backupNote(backup), nil
	}
	return orDash(before) + " → " + orDash(after) + backupNote(backup), nil
}

// downAgain is the undo of migrating up from rev: down again to rev,
// unless database.rollback_on_failure is false or the tool cannot go down
// there, which leaves the database where it is and says so.
func (d *deployment) downAgain(m Migrator, rev string) func(context.Context) error {
	return func(ctx context.Context) error {
		db := d.env.Database
		if db.RollbackOnFailure != nil && !*db.RollbackOnFailure {
			return errors.New("database left at the new revision (rollback_on_failure is false)")
		}
		if err := m.CheckDown(ctx, rev); err != nil {
			return fmt.Errorf("%s migrations cannot be undone automatically (%v): database is not back at %s", db.Tool, err, orDash(rev))
		}
		return d.rec.step(ctx, "rollback migrate", 0, func(ctx context.Context, out io.Writer) (string, error) {
			return "down to " + orDash(rev), m.Down(ctx, rev)
		})
	}
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
