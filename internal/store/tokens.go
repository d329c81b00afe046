package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What a deploy API token may do. ScopeRead reads the API; the others act
// on the targets their pattern matches (ScopeLock covers unlock too).
const (
	ScopeRead     = "read"
	ScopeDeploy   = "deploy"
	ScopeRollback = "rollback"
	ScopeLock     = "lock"
)

// TriggerAPI marks a deployment queued through the deploy API; its actor
// is the token's name.
const TriggerAPI Trigger = "api"

// TokenPrefix starts every API token, so that secret scanners and people
// can tell one when they see it.
const TokenPrefix = "fraisier_"

// ErrTokenRevoked means a token was found but revoked.
var ErrTokenRevoked = errors.New("token revoked")

// Scope is one permission of a token: read, or an action on the targets
// whose fraise and environment match the patterns (path.Match globs,
// "*" for all).
type Scope struct {
	Action      string
	Fraise      string
	Environment string
}

func (s Scope) String() string {
	if s.Action == ScopeRead {
		return ScopeRead
	}
	return s.Action + ":" + s.Fraise + "/" + s.Environment
}

// MarshalText writes the scope as ParseScope reads it.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseScope reads "read" or "ACTION:FRAISE/ENVIRONMENT" where ACTION is
// deploy, rollback or lock and each name may be a glob.
func ParseScope(text string) (Scope, error) {
	if text == ScopeRead {
		return Scope{Action: ScopeRead}, nil
	}
	action, target, ok := strings.Cut(text, ":")
	if !ok {
		return Scope{}, fmt.Errorf("scope %q: want read, or deploy:FRAISE/ENV, rollback:FRAISE/ENV or lock:FRAISE/ENV (a name may be * or a glob)", text)
	}
	switch action {
	case ScopeDeploy, ScopeRollback, ScopeLock:
	default:
		return Scope{}, fmt.Errorf("scope %q: unknown action %q: use deploy, rollback or lock", text, action)
	}
	fraise, env, ok := strings.Cut(target, "/")
	if !ok || fraise == "" || env == "" || strings.Contains(env, "/") {
		return Scope{}, fmt.Errorf("scope %q: name the target as FRAISE/ENVIRONMENT, e.g. %s:shop/production or %s:shop/*", text, action, action)
	}
	for _, p := range []string{fraise, env} {
		if _, err := path.Match(p, ""); err != nil || strings.ContainsAny(p, " \t\n") {
			return Scope{}, fmt.Errorf("scope %q: %q is not a valid pattern", text, p)
		}
	}
	return Scope{Action: action, Fraise: fraise, Environment: env}, nil
}

// Covers says whether the scope allows action on t.
func (s Scope) Covers(action string, t Target) bool {
	if s.Action != action {
		return false
	}
	if action == ScopeRead {
		return true
	}
	f, _ := path.Match(s.Fraise, t.Fraise)
	e, _ := path.Match(s.Environment, t.Environment)
	return f && e
}

// APIToken is a deploy API token as stored: never the token itself.
type APIToken struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Scopes     []Scope    `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Allows says whether one of the token's scopes allows action on t (t is
// ignored for ScopeRead).
func (t APIToken) Allows(action string, target Target) bool {
	for _, s := range t.Scopes {
		if s.Covers(action, target) {
			return true
		}
	}
	return false
}

// CanAct says whether the token may do anything at all to t: such a token
// may also follow t's deployments.
func (t APIToken) CanAct(target Target) bool {
	return t.Allows(ScopeDeploy, target) || t.Allows(ScopeRollback, target) || t.Allows(ScopeLock, target)
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckTokenName refuses a name that is not 1 to 64 letters, digits, '.',
// '_' or '-', or that is all digits (an id).
func CheckTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return fmt.Errorf("token name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if _, err := strconv.ParseInt(name, 10, 64); err == nil {
		return fmt.Errorf("token name %q: a name of digits only would read as a token id; add a letter", name)
	}
	return nil
}

// hashToken is what the database keeps of a token.
func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

const apiTokenCols = "id, name, scopes, created_at, last_used_at, revoked_at"

func scanAPIToken(s scanner) (APIToken, error) {
	var (
		t               APIToken
		scopes          string
		created         int64
		lastUsed, revok sql.NullInt64
	)
	if err := s.Scan(&t.ID, &t.Name, &scopes, &created, &lastUsed, &revok); err != nil {
		return t, err
	}
	for _, f := range strings.Fields(scopes) {
		sc, err := ParseScope(f)
		if err != nil {
			return t, fmt.Errorf("token %s: %w", t.Name, err)
		}
		t.Scopes = append(t.Scopes, sc)
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMS(created), fromNullMS(lastUsed), fromNullMS(revok)
	return t, nil
}

// CreateAPIToken makes a token named name with scopes and returns it with
// its secret, which is shown this once: only its SHA-256 is stored.
func (db *DB) CreateAPIToken(ctx context.Context, name string, scopes []Scope) (APIToken, string, error) {
	if err := CheckTokenName(name); err != nil {
		return APIToken{}, "", err
	}
	if len(scopes) == 0 {
		return APIToken{}, "", fmt.Errorf("token %s: at least one scope is required", name)
	}
	texts := make([]string, len(scopes))
	for i, s := range scopes {
		texts[i] = s.String()
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return APIToken{}, "", fmt.Errorf("create token %s: read random bytes: %w", name, err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var tok APIToken
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_api_token WHERE name = ?"), name); err == nil {
			return fmt.Errorf("a token named %s exists already: revoke it first, or choose another name", name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var id int64
		if err := tx.QueryRowContext(ctx, db.q(`INSERT INTO tb_api_token (name, hash, scopes, created_at)
			VALUES (?, ?, ?, ?) RETURNING id`), name, hashToken(secret), strings.Join(texts, " "), db.nowMS()).Scan(&id); err != nil {
			return err
		}
		var err error
		tok, err = scanAPIToken(tx.QueryRowContext(ctx, db.q("SELECT "+apiTokenCols+" FROM tb_api_token WHERE id = ?"), id))
		return err
	})
	if err != nil {
		return APIToken{}, "", fmt.Errorf("create token %s: %w", name, err)
	}
	return tok, secret, nil
}

// APITokens returns every token, revoked ones included, by id.
func (db *DB) APITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT "+apiTokenCols+" FROM tb_api_token ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes the token named, or numbered, nameOrID and
// returns it; a token revoked already stays revoked since then.
// ErrNotFound when there is none.
func (db *DB) RevokeAPIToken(ctx context.Context, nameOrID string) (APIToken, error) {
	where, arg := "name = ?", any(nameOrID)
	if id, err := strconv.ParseInt(nameOrID, 10, 64); err == nil {
		where, arg = "id = ?", id
	}
	var tok APIToken
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q("UPDATE tb_api_token SET revoked_at = ? WHERE "+where+" AND revoked_at IS NULL"),
			db.nowMS(), arg); err != nil {
			return err
		}
		var err error
		tok, err = scanAPIToken(tx.QueryRowContext(ctx, db.q("SELECT "+apiTokenCols+" FROM tb_api_token WHERE "+where), arg))
		if notFound(err) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return APIToken{}, fmt.Errorf("revoke token %s: %w", nameOrID, err)
	}
	return tok, nil
}

// tokenTouchEvery bounds how often a token's last use is written: a
// client following a deployment asks every second.
const tokenTouchEvery = time.Minute

// AuthenticateAPIToken returns the token whose secret this is and records
// its use. ErrNotFound when no token has it, ErrTokenRevoked when it was
// revoked. The secret is looked up by its hash and the hashes compared in
// constant time; neither appears in the error.
func (db *DB) AuthenticateAPIToken(ctx context.Context, secret string) (APIToken, error) {
	want := hashToken(secret)
	var stored string
	row := db.sql.QueryRowContext(ctx, db.q("SELECT hash, "+apiTokenCols+" FROM tb_api_token WHERE hash = ?"), want)
	tok, err := scanAPIToken(prefixScanner{row: row, first: &stored})
	switch {
	case notFound(err):
		return APIToken{}, ErrNotFound
	case err != nil:
		return APIToken{}, fmt.Errorf("authenticate a token: %w", err)
	case subtle.ConstantTimeCompare([]byte(stored), []byte(want)) != 1:
		return APIToken{}, ErrNotFound
	case tok.RevokedAt != nil:
		return tok, ErrTokenRevoked
	}
	now := db.nowMS()
	if tok.LastUsedAt == nil || now-tok.LastUsedAt.UnixMilli() >= tokenTouchEvery.Milliseconds() {
		err := db.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, db.q("UPDATE tb_api_token SET last_used_at = ? WHERE id = ?"), now, tok.ID)
			return err
		})
		if err != nil {
			return APIToken{}, fmt.Errorf("record the use of token %s: %w", tok.Name, err)
		}
		t := fromMS(now)
		tok.LastUsedAt = &t
	}
	return tok, nil
}

// prefixScanner scans a row whose first column goes to first and the rest
// to the scanner's caller.
type prefixScanner struct {
	row   *sql.Row
	first *string
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append([]any{p.first}, dest...)...)
}
