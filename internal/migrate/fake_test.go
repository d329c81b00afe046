package migrate

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// fakeToolScript stands in for programs the tests cannot run for real. It
// is not confiture (which has no Debian package) nor alembic, Django or
// pg_dump: it records its argv and the connection variables it was given
// to $FAKE_LOG, then imitates just enough of each command-line contract
// for this package's parsing to be exercised — for confiture the
// documented one of confiture ≥ 0.20 (migrate up, down-to, down --steps,
// status --format json --output, rebuild, --no-config with
// CONFITURE_DATABASE_URL), keeping the applied versions in $FAKE_STATE.
// With $FAKE_FAIL set it prints the database URL, as a careless traceback
// would, and exits 1.
const fakeToolScript = `#!/usr/bin/python3
import json, os, sys

args = sys.argv[1:]
log = os.environ.get("FAKE_LOG")
if log:
    keep = ("FRAISIER_", "CONFITURE_", "DATABASE_URL", "PG", "DJANGO_")
    with open(log, "a") as f:
        f.write(json.dumps({"argv": sys.argv, "env": {k: v for k, v in os.environ.items() if k.startswith(keep)}}) + "\n")

if os.environ.get("FAKE_FAIL"):
    url = os.environ.get("FRAISIER_DATABASE_URL") or os.environ.get("CONFITURE_DATABASE_URL") or os.environ.get("PGPASSWORD")
    print("Traceback (most recent call last):\nOperationalError: could not connect to", url)
    sys.exit(1)


def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default


def confiture():
    if "--no-config" in args and not os.environ.get("CONFITURE_DATABASE_URL"):
        print("CONFIG_010: --no-config was given but no DSN is set in the environment")
        sys.exit(2)
    mdir = opt("--migrations-dir", "db/migrations")
    migs = sorted(f[: -len(".up.sql")] for f in os.listdir(mdir) if f.endswith(".up.sql"))
    migs = [tuple(m.split("_", 1)) for m in migs]
    versions = [v for v, _ in migs]
    state = os.environ["FAKE_STATE"]
    absent = not os.path.exists(state)
    applied = [] if absent else json.load(open(state))

    def save(a):
        json.dump(a, open(state, "w"))

    cmd = args[:2]
    if cmd == ["migrate", "status"]:
        pending = [v for v in versions if v not in applied]
        report = {
            "applied": applied,
            "pending": pending,
            "current": applied[-1] if applied else None,
            "migrations": [{"version": v, "name": n, "status": "applied" if v in applied else "pending"} for v, n in migs],
        }
        json.dump(report, open(opt("--output"), "w"))
        sys.exit(2 if absent else 1 if pending else 0)
    if cmd == ["migrate", "up"]:
        save(versions)
        print("applied", len(versions) - len(applied), "migration(s)")
    elif cmd == ["migrate", "down-to"]:
        target = args[2]
        if target not in applied:
            print("unknown revision", target)
            sys.exit(3)
        save(applied[: applied.index(target) + 1])
    elif cmd == ["migrate", "down"]:
        save(applied[: len(applied) - int(opt("--steps", "1"))])
    elif cmd == ["migrate", "rebuild"] and "--drop-schemas" in args and "--yes" in args and "--config" in args:
        save(versions)
    else:
        print("fake confiture: unknown command", args)
        sys.exit(2)


def generic():
    if args[:2] == ["-m", "alembic"]:
        if "current" in args:
            print("INFO  [alembic.runtime.migration] Context impl.\na1b2c3d4e5f6 (head)")
        elif "history" in args:
            print("<base> -> a1b2c3d4e5f6 (head), init")
    elif args and args[0].endswith("manage.py"):
        if "--list" in args:
            print("shop\n [X] 0001_initial\n [X] 0002_price")
        elif "--plan" in args:
            print("[X]  shop.0001_initial\n[X]  shop.0002_price")
    elif os.path.basename(sys.argv[0]) == "pg_dump":
        open(opt("--file"), "w").write("PGDMP fake\n")
    elif args[:1] == ["backup"]:
        open(args[1], "w").write("backup\n")
    elif args[:1] == ["current"]:
        print("rev-7")


if os.path.basename(sys.argv[0]) == "confiture":
    confiture()
else:
    generic()
`

// fakeTool writes the fake as dir/name and returns its path.
func fakeTool(t *testing.T, dir, name string) string {
	t.Helper()
	needPython(t)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(fakeToolScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeConfiture is the stand-in for confiture, with its log and state files.
func fakeConfiture(t *testing.T) (program, log, state string) {
	t.Helper()
	dir := t.TempDir()
	return fakeTool(t, dir, "confiture"), filepath.Join(dir, "argv.log"), filepath.Join(dir, "state.json")
}

// fakeCall is one recorded run of the fake.
type fakeCall struct {
	Argv []string          `json:"argv"`
	Env  map[string]string `json:"env"`
}

func readFakeLog(t *testing.T, log string) []fakeCall {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []fakeCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c fakeCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	return calls
}
