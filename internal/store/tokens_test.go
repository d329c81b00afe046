package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

func TestAPITokensSQLite(t *testing.T)   { testAPITokens(t, openSQLite) }
func TestAPITokensPostgres(t *testing.T) { testAPITokens(t, openPostgres) }

func testAPITokens(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	scopes := mustScopes(t, "read", "deploy:shop/production", "lock:shop/*")
	tok, secret, err := db.CreateAPIToken(ctx, "ci-shop", scopes)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, store.TokenPrefix) || len(secret) < len(store.TokenPrefix)+40 {
		t.Fatalf("secret %q: want the prefix and 32 random bytes", secret)
	}
	if tok.Name != "ci-shop" || len(tok.Scopes) != 3 || tok.LastUsedAt != nil || tok.RevokedAt != nil {
		t.Fatalf("created %+v", tok)
	}
	if _, _, err := db.CreateAPIToken(ctx, "ci-shop", scopes); err == nil {
		t.Fatal("a second token of the same name was created")
	}
	_, other, err := db.CreateAPIToken(ctx, "reader", mustScopes(t, "read"))
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Fatal("two tokens with one secret")
	}

	// No readable column holds the secret; the hash is not the secret.
	rows, err := db.SQL().QueryContext(ctx, "SELECT name, hash, scopes FROM tb_api_token")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, hash, sc string
		if err := rows.Scan(&name, &hash, &sc); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{secret, other} {
			body := strings.TrimPrefix(s, store.TokenPrefix)
			if strings.Contains(name+hash+sc, body) || hash == s {
				t.Fatalf("row %s holds a token", name)
			}
		}
		if len(hash) != 64 {
			t.Fatalf("hash %q: want the hex of a SHA-256", hash)
		}
	}
	rows.Close()

	got, err := db.AuthenticateAPIToken(ctx, secret)
	if err != nil || got.ID != tok.ID || got.LastUsedAt == nil {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if _, err := db.AuthenticateAPIToken(ctx, secret+"x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, err := db.AuthenticateAPIToken(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an empty token: %v", err)
	}

	list, err := db.APITokens(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ci-shop" || list[0].LastUsedAt == nil || list[1].Name != "reader" {
		t.Fatalf("list: %+v %v", list, err)
	}

	rev, err := db.RevokeAPIToken(ctx, "ci-shop")
	if err != nil || rev.RevokedAt == nil {
		t.Fatalf("revoke by name: %+v %v", rev, err)
	}
	if _, err := db.AuthenticateAPIToken(ctx, secret); !errors.Is(err, store.ErrTokenRevoked) {
		t.Fatalf("a revoked token: %v", err)
	}
	again, err := db.RevokeAPIToken(ctx, "ci-shop")
	if err != nil || !again.RevokedAt.Equal(*rev.RevokedAt) {
		t.Fatalf("revoking twice moved the revocation: %v %v (%v)", again.RevokedAt, rev.RevokedAt, err)
	}
	if _, err := db.RevokeAPIToken(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke an unknown token: %v", err)
	}
	byID, err := db.RevokeAPIToken(ctx, "2")
	if err != nil || byID.Name != "reader" || byID.RevokedAt == nil {
		t.Fatalf("revoke by id: %+v %v", byID, err)
	}
}

func mustScopes(t *testing.T, texts ...string) []store.Scope {
	t.Helper()
	var out []store.Scope
	for _, s := range texts {
		sc, err := store.ParseScope(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sc)
	}
	return out
}

func TestScopes(t *testing.T) {
	shopProd := store.Target{Fraise: "shop", Environment: "production"}
	shopStaging := store.Target{Fraise: "shop", Environment: "staging"}
	blog := store.Target{Fraise: "blog", Environment: "production"}
	cases := []struct {
		scope  string
		action string
		target store.Target
		want   bool
	}{
		{"read", store.ScopeRead, shopProd, true},
		{"read", store.ScopeDeploy, shopProd, false},
		{"deploy:shop/production", store.ScopeDeploy, shopProd, true},
		{"deploy:shop/production", store.ScopeDeploy, shopStaging, false},
		{"deploy:shop/production", store.ScopeRollback, shopProd, false},
		{"deploy:shop/production", store.ScopeRead, shopProd, false},
		{"deploy:shop/*", store.ScopeDeploy, shopStaging, true},
		{"deploy:shop/*", store.ScopeDeploy, blog, false},
		{"deploy:*/production", store.ScopeDeploy, blog, true},
		{"rollback:*/*", store.ScopeRollback, blog, true},
		{"lock:shop/stag*", store.ScopeLock, shopStaging, true},
		{"lock:shop/stag*", store.ScopeLock, shopProd, false},
	}
	for _, c := range cases {
		sc, err := store.ParseScope(c.scope)
		if err != nil {
			t.Fatalf("%s: %v", c.scope, err)
		}
		if sc.String() != c.scope {
			t.Errorf("%s reads back as %s", c.scope, sc)
		}
		if got := (store.APIToken{Scopes: []store.Scope{sc}}).Allows(c.action, c.target); got != c.want {
			t.Errorf("%s allows %s on %s: %v, want %v", c.scope, c.action, c.target, got, c.want)
		}
	}
	for _, bad := range []string{"", "write", "deploy", "deploy:", "deploy:shop", "deploy:shop/", "deploy:/prod",
		"deploy:a/b/c", "admin:shop/production", "deploy:sh[op/production", "read:shop/production"} {
		if _, err := store.ParseScope(bad); err == nil {
			t.Errorf("scope %q accepted", bad)
		}
	}
	for _, bad := range []string{"", "42", "-x", "a b", strings.Repeat("a", 65), "tok/en"} {
		if err := store.CheckTokenName(bad); err == nil {
			t.Errorf("token name %q accepted", bad)
		}
	}
}
