package forgestatus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/fraiseql/fraisier/internal/forgestatus"
)

// An outbox sends rows of kind forge_status: each payload is a Report
// without its token or API URL, which the sender adds from the
// configuration (config.Git.StatusOf). Both rows of one deployment may be
// written before either is sent: the final one finds the GitHub deployment
// the first one created by fraisier's deployment id.
func ExampleClient_Send() {
	// A loopback stand-in for GitHub's API.
	var calls []string
	created := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls = append(calls, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == "GET" && !created: // list deployments
			fmt.Fprint(w, `[]`)
		case r.Method == "GET":
			fmt.Fprint(w, `[{"id":42,"payload":{"fraisier_deployment_id":7}}]`)
		case strings.HasSuffix(r.URL.Path, "/deployments"):
			created = true
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":42}`)
		default:
			var s struct{ State string }
			_ = json.Unmarshal(body, &s)
			calls[len(calls)-1] += " " + s.State
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{}`)
		}
	}))
	defer srv.Close()

	rows := []string{
		`{"forge":"github","repository":"acme/api","sha":"0123456789abcdef0123456789abcdef01234567","environment":"production","state":"running","deployment_id":7}`,
		`{"forge":"github","repository":"acme/api","sha":"0123456789abcdef0123456789abcdef01234567","environment":"production","state":"succeeded","deployment_id":7}`,
	}
	client := forgestatus.New("fraisier/example")
	for _, row := range rows {
		var r forgestatus.Report
		if err := json.Unmarshal([]byte(row), &r); err != nil {
			panic(err)
		}
		r.APIURL, r.Token = srv.URL, "token-from-the-configuration"
		res, err := client.Send(context.Background(), r)
		if retry, after := forgestatus.Retry(err); err != nil {
			fmt.Println("retry:", retry, "after:", after, err)
			continue
		}
		fmt.Printf("%s: %+v\n", r.State, res)
	}
	fmt.Println(strings.Join(calls, "\n"))
	// Output:
	// running: {ForgeDeploymentID:42 Via:deployment}
	// succeeded: {ForgeDeploymentID:42 Via:deployment}
	// GET /repos/acme/api/deployments
	// POST /repos/acme/api/deployments
	// POST /repos/acme/api/deployments/42/statuses in_progress
	// GET /repos/acme/api/deployments
	// POST /repos/acme/api/deployments/42/statuses success
}
