package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/store"
)

const tokensLong = `Tokens authenticate the deploy API of fraisier serve (POST /api/deploy,
/api/rollback, /api/lock, /api/unlock) and may read its read-only API. Each
has scopes:

  read                      read /api/fraises, /api/deployments, /providers, /metrics
  deploy:FRAISE/ENV         queue a deployment of the environment
  rollback:FRAISE/ENV       queue a rollback of the environment
  lock:FRAISE/ENV           lock and unlock the environment

FRAISE and ENV may be * or a glob (deploy:shop/*). A token that may deploy,
roll back or lock an environment may also follow that environment's
deployments (GET /api/deployments/{id}) without read.

The token is printed once, by create; the state database keeps only its
SHA-256. server.api_token stays a read token: it never deploys.`

func (a *app) tokensCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke the tokens of the deploy API",
		Long:  tokensLong,
		Args:  rangeArgs(0, 0),
	}
	cmd.AddCommand(a.tokensCreateCommand(), a.tokensListCommand(), a.tokensRevokeCommand())
	return cmd
}

// tokensStore opens the state database the configuration names.
func (a *app) tokensStore(ctx context.Context) (*store.DB, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return openStore(ctx, a.stateFromConfig(cfg))
}

func (a *app) tokensCreateCommand() *cobra.Command {
	var (
		scopes []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --scope SCOPE [--scope SCOPE...]",
		Short: "Create a token and print it, once: only its hash is kept",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := store.CheckTokenName(args[0]); err != nil {
				return &usageError{err}
			}
			if len(scopes) == 0 {
				return &usageError{errors.New("--scope is required: read, deploy:FRAISE/ENV, rollback:FRAISE/ENV or lock:FRAISE/ENV")}
			}
			var parsed []store.Scope
			for _, s := range scopes {
				for _, f := range strings.Split(s, ",") {
					sc, err := store.ParseScope(strings.TrimSpace(f))
					if err != nil {
						return &usageError{err}
					}
					parsed = append(parsed, sc)
				}
			}
			db, err := a.tokensStore(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			tok, secret, err := db.CreateAPIToken(cmd.Context(), args[0], parsed)
			if err != nil {
				return withCode(ExitState, err)
			}
			if asJSON {
				return writeJSON(a.streams.Out, struct {
					store.APIToken
					Token string `json:"token"`
				}{tok, secret})
			}
			fmt.Fprintf(a.streams.Err, "token %s (id %d, %s) created; it is shown this once, store it now:\n", tok.Name, tok.ID, scopeList(tok.Scopes))
			_, err = fmt.Fprintln(a.streams.Out, secret)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "a scope (repeat, or separate with commas): read, deploy:FRAISE/ENV, rollback:FRAISE/ENV, lock:FRAISE/ENV")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func scopeList(scopes []store.Scope) string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = s.String()
	}
	return strings.Join(out, " ")
}

func (a *app) tokensListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens: name, scopes, when created, last used and revoked (never the token)",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.tokensStore(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			toks, err := db.APITokens(cmd.Context())
			if err != nil {
				return withCode(ExitState, err)
			}
			if asJSON {
				return writeJSON(a.streams.Out, map[string]any{"tokens": toks})
			}
			t := newTable(a.streams.Out, "ID", "NAME", "SCOPES", "CREATED", "LAST USED", "REVOKED")
			for _, tk := range toks {
				t.row(strconv.FormatInt(tk.ID, 10), tk.Name, scopeList(tk.Scopes), fmtTime(tk.CreatedAt), fmtTimePtr(tk.LastUsedAt), fmtTimePtr(tk.RevokedAt))
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) tokensRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "Revoke a token: the API refuses it from now on (it stays listed)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.tokensStore(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			tok, err := db.RevokeAPIToken(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return withCode(ExitNotFound, fmt.Errorf("no token %q: fraisier tokens list shows them", args[0]))
			}
			if err != nil {
				return withCode(ExitState, err)
			}
			_, err = fmt.Fprintf(a.streams.Out, "token %s (id %d) revoked at %s\n", tok.Name, tok.ID, fmtTimePtr(tok.RevokedAt))
			return err
		},
	}
}
