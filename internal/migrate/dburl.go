package migrate

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
)

type dbKind int

const (
	dbOther dbKind = iota
	dbPostgres
	dbSQLite
)

// dbURL is a database URL taken apart. Its String never holds the password.
type dbURL struct {
	kind dbKind
	// scheme is as written, e.g. "postgresql+psycopg"; shown in errors.
	scheme string

	// SQLite
	path string // absolute

	// PostgreSQL
	user     string
	password string
	hosts    []string
	ports    []string
	dbname   string
	params   url.Values
}

// baseScheme drops an SQLAlchemy driver suffix: "postgresql+psycopg" is
// PostgreSQL to everyone but SQLAlchemy.
func baseScheme(raw string) (scheme, rest string, ok bool) {
	scheme, rest, ok = strings.Cut(raw, ":")
	if !ok {
		return "", "", false
	}
	base, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	return base, rest, true
}

// parseDBURL understands the two URL families this package talks to itself:
//
//   - postgres:// and postgresql:// (libpq's URI form, several hosts allowed,
//     host= in the query for a unix socket directory);
//   - sqlite:////absolute/path — SQLAlchemy's spelling, so that the one URL
//     works for alembic, django settings and this package alike. A relative
//     path (sqlite:///app.db) is refused: it would resolve against each
//     release directory and give every release a database of its own.
//
// Anything else is dbOther: tools may understand it, this package cannot
// back it up or drop it.
func parseDBURL(raw string) (*dbURL, error) {
	scheme, rest, ok := baseScheme(raw)
	if !ok {
		return &dbURL{kind: dbOther}, nil
	}
	shown, _, _ := strings.Cut(raw, ":")
	switch scheme {
	case "sqlite":
		p, ok := strings.CutPrefix(rest, "///")
		if !ok {
			return nil, fmt.Errorf("sqlite URL must be sqlite:////absolute/path (four slashes), not %s:%s", shown, rest)
		}
		if strings.ContainsAny(p, "?#") {
			return nil, errors.New("sqlite URL must name a plain file path: query parameters are not supported")
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("sqlite URL names the relative path %q: use sqlite:////absolute/path (four slashes) so every release uses the same file", p)
		}
		return &dbURL{kind: dbSQLite, scheme: shown, path: filepath.Clean(p)}, nil
	case "postgres", "postgresql":
		u, err := parsePostgresURL(rest)
		if err != nil {
			return nil, err
		}
		u.scheme = shown
		return u, nil
	}
	return &dbURL{kind: dbOther, scheme: shown}, nil
}

// parsePostgresURL parses what follows "postgres:" by hand, because
// net/url rejects libpq's multi-host authority (h1:5432,h2:5433).
func parsePostgresURL(rest string) (*dbURL, error) {
	rest, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return nil, errors.New("postgres URL must start with postgres://")
	}
	rest, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	authority, path, _ := strings.Cut(rest, "/")
	u := &dbURL{kind: dbPostgres}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if u.user, err = url.PathUnescape(user); err != nil {
			return nil, errors.New("postgres URL: bad escape in user name")
		}
		if hasPass {
			if u.password, err = url.PathUnescape(pass); err != nil {
				return nil, errors.New("postgres URL: bad escape in password")
			}
		}
	}
	if authority != "" {
		for _, hp := range strings.Split(authority, ",") {
			host, port := hp, ""
			if strings.HasPrefix(hp, "[") { // [::1]:5432
				end := strings.IndexByte(hp, ']')
				if end < 0 {
					return nil, errors.New("postgres URL: unclosed [ in host")
				}
				host, port = hp[1:end], strings.TrimPrefix(hp[end+1:], ":")
			} else if h, p, ok := strings.Cut(hp, ":"); ok {
				host, port = h, p
			}
			h, err := url.PathUnescape(host)
			if err != nil {
				return nil, errors.New("postgres URL: bad escape in host")
			}
			u.hosts = append(u.hosts, h)
			u.ports = append(u.ports, port)
		}
	}
	db, err := url.PathUnescape(path)
	if err != nil {
		return nil, errors.New("postgres URL: bad escape in database name")
	}
	u.dbname = db
	if u.params, err = url.ParseQuery(query); err != nil {
		return nil, errors.New("postgres URL: malformed query")
	}
	if pw := u.params.Get("password"); pw != "" {
		u.password = pw
	}
	return u, nil
}

// libpqEnv maps libpq URI parameters to the environment variables that
// carry them, so that pg_dump gets the whole connection without an argv.
var libpqEnv = map[string]string{
	"host":                     "PGHOST",
	"hostaddr":                 "PGHOSTADDR",
	"port":                     "PGPORT",
	"dbname":                   "PGDATABASE",
	"user":                     "PGUSER",
	"password":                 "PGPASSWORD",
	"passfile":                 "PGPASSFILE",
	"service":                  "PGSERVICE",
	"options":                  "PGOPTIONS",
	"application_name":         "PGAPPNAME",
	"connect_timeout":          "PGCONNECT_TIMEOUT",
	"client_encoding":          "PGCLIENTENCODING",
	"sslmode":                  "PGSSLMODE",
	"sslcert":                  "PGSSLCERT",
	"sslkey":                   "PGSSLKEY",
	"sslrootcert":              "PGSSLROOTCERT",
	"sslcrl":                   "PGSSLCRL",
	"sslcrldir":                "PGSSLCRLDIR",
	"sslsni":                   "PGSSLSNI",
	"sslcompression":           "PGSSLCOMPRESSION",
	"requirepeer":              "PGREQUIREPEER",
	"ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
	"ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
	"gssencmode":               "PGGSSENCMODE",
	"krbsrvname":               "PGKRBSRVNAME",
	"gsslib":                   "PGGSSLIB",
	"target_session_attrs":     "PGTARGETSESSIONATTRS",
	"load_balance_hosts":       "PGLOADBALANCEHOSTS",
	"channel_binding":          "PGCHANNELBINDING",
	"require_auth":             "PGREQUIREAUTH",
	"tcp_user_timeout":         "PGTCPUSERTIMEOUT",
	"keepalives":               "PGKEEPALIVES",
	"keepalives_idle":          "PGKEEPALIVESIDLE",
	"keepalives_interval":      "PGKEEPALIVESINTERVAL",
	"keepalives_count":         "PGKEEPALIVESCOUNT",
	"replication":              "PGREPLICATION",
	"gssdelegation":            "PGGSSDELEGATION",
	"sslcertmode":              "PGSSLCERTMODE",
	"sslnegotiation":           "PGSSLNEGOTIATION",
	"max_protocol_version":     "PGMAXPROTOCOLVERSION",
	"min_protocol_version":     "PGMINPROTOCOLVERSION",
}

// pgEnv renders the connection as PG* variables. A parameter libpq has no
// variable for is refused rather than dropped: connecting somewhere subtly
// different from the URL is worse than not backing up.
func (u *dbURL) pgEnv() ([]string, error) {
	vars := map[string]string{}
	if len(u.hosts) > 0 {
		vars["PGHOST"] = strings.Join(u.hosts, ",")
		if strings.Join(u.ports, "") != "" {
			ports := make([]string, len(u.ports))
			for i, p := range u.ports {
				if p == "" {
					p = "5432"
				}
				ports[i] = p
			}
			vars["PGPORT"] = strings.Join(ports, ",")
		}
	}
	if u.user != "" {
		vars["PGUSER"] = u.user
	}
	if u.password != "" {
		vars["PGPASSWORD"] = u.password
	}
	if u.dbname != "" {
		vars["PGDATABASE"] = u.dbname
	}
	keys := make([]string, 0, len(u.params))
	for k := range u.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, ok := libpqEnv[k]
		if !ok {
			return nil, fmt.Errorf("postgres URL parameter %q has no libpq environment variable; pass the backup a command of its own", k)
		}
		vars[name] = u.params.Get(k)
	}
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, nil
}

// connString is the URL in the form pgx parses: the SQLAlchemy driver
// suffix removed, nothing else touched.
func connString(raw string) string {
	scheme, rest, ok := baseScheme(raw)
	if !ok {
		return raw
	}
	return scheme + ":" + rest
}

// name is what a backup file is named after.
func (u *dbURL) name() string {
	var n string
	switch u.kind {
	case dbSQLite:
		n = strings.TrimSuffix(filepath.Base(u.path), filepath.Ext(u.path))
	case dbPostgres:
		n = u.dbname
		if n == "" {
			n = u.user
		}
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, n)
	if clean == "" || strings.Trim(clean, ".") == "" {
		return "database"
	}
	return clean
}
