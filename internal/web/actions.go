package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/fraiseql/fraisier/internal/store"
)

// scopeOf is the scope the dashboard's action needs; ok is false for an
// action it does not have.
func scopeOf(action string) (scope string, ok bool) {
	switch action {
	case "deploy":
		return store.ScopeDeploy, true
	case "rollback":
		return store.ScopeRollback, true
	case "lock", "unlock":
		return store.ScopeLock, true
	}
	return "", false
}

// Can says whether the session may do action on fraise/environment, for
// the pages to offer only what it may.
func (s *session) Can(action, fraise, environment string) bool {
	scope, ok := scopeOf(action)
	return ok && s.Token.Allows(scope, store.Target{Fraise: fraise, Environment: environment})
}

type actionData struct {
	Action string
	Target store.Target
	// To is the release or commit a rollback returns to; Ref the branch
	// or commit a deploy deploys.
	To, Ref string
	Reason  string
	Error   string
}

// queuedAnswer is the deploy API's answer to a queued request.
type queuedAnswer struct {
	Error        string `json:"error"`
	DeploymentID int64  `json:"deployment_id"`
	SHA          string `json:"sha"`
	Ref          string `json:"ref"`
	Superseded   int64  `json:"superseded"`
}

// actionOf reads the action and target of the request and checks that
// the session may do it, answering the request itself when not.
func (d *Dashboard) actionOf(w http.ResponseWriter, r *http.Request) (actionData, bool) {
	a := actionData{Action: r.PathValue("action"),
		Target: store.Target{Fraise: r.FormValue("fraise"), Environment: r.FormValue("environment")},
		To:     r.FormValue("to"), Ref: r.FormValue("ref"), Reason: r.FormValue("reason")}
	scope, ok := scopeOf(a.Action)
	if !ok {
		d.notFound(w, r)
		return a, false
	}
	if a.Target.Fraise == "" || a.Target.Environment == "" {
		d.problem(w, r, http.StatusBadRequest, "No environment", "Choose the environment on the overview.")
		return a, false
	}
	tok := sessionOf(r).Token
	if !tok.Allows(scope, a.Target) {
		d.o.Log.Warn("web: refused, out of the token's scopes", "token", tok.Name, "action", a.Action,
			"fraise", clip(a.Target.Fraise, 80), "environment", clip(a.Target.Environment, 80))
		d.render(w, r, http.StatusForbidden, "forbidden", page{Title: "Not allowed", Data: map[string]any{
			"Token": tok.Name, "Action": a.Action, "Target": a.Target, "Scope": scope + ":" + a.Target.String()}})
		return a, false
	}
	return a, true
}

// confirm shows the confirmation form of an action.
func (d *Dashboard) confirm(w http.ResponseWriter, r *http.Request) {
	a, ok := d.actionOf(w, r)
	if !ok {
		return
	}
	d.render(w, r, http.StatusOK, "confirm", page{Title: "Confirm " + a.Action, Data: a})
}

// act carries out a confirmed action through the deploy API's handler
// and shows its answer.
func (d *Dashboard) act(w http.ResponseWriter, r *http.Request) {
	a, ok := d.actionOf(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		a.Error = "Tick the box to confirm."
		d.render(w, r, http.StatusBadRequest, "confirm", page{Title: "Confirm " + a.Action, Data: a})
		return
	}
	if d.o.Act == nil {
		d.problem(w, r, http.StatusNotImplemented, "Not available", "This server has no deploy API, so the dashboard cannot act.")
		return
	}
	status, body := d.o.Act(r, sessionOf(r).Token, a.Action, a.fields())
	var answer queuedAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		d.internalError(w, r, a.Action, fmt.Errorf("read the deploy API's answer: %w", err))
		return
	}
	if status >= 300 {
		a.Error = answer.Error
		d.render(w, r, status, "confirm", page{Title: "Confirm " + a.Action, Data: a})
		return
	}
	if a.Action == "deploy" {
		d.render(w, r, http.StatusOK, "queued", page{Title: "Deployment queued", Data: map[string]any{"Target": a.Target, "Answer": answer}})
		return
	}
	if answer.DeploymentID > 0 {
		http.Redirect(w, r, fmt.Sprintf("%sdeployments/%d", Prefix, answer.DeploymentID), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// fields are the action's JSON body for the deploy API.
func (a actionData) fields() map[string]string {
	fields := map[string]string{"fraise": a.Target.Fraise, "environment": a.Target.Environment}
	switch a.Action {
	case "deploy":
		if ref := strings.TrimSpace(a.Ref); ref != "" {
			fields["ref"] = ref
		}
	case "rollback":
		if a.To != "" {
			fields["to"] = a.To
		}
	default:
		fields["reason"] = strings.TrimSpace(a.Reason)
	}
	return fields
}
