package forge_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
)

// The intake's three steps: which forge, is it genuine, what does it say.
func Example() {
	body := []byte(`{"ref":"refs/heads/main","before":"9049f1265b7d61be4a8904a9a27120d2064dab3b",` +
		`"after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"full_name":"Codertocat/Hello-World"},` +
		`"sender":{"login":"Codertocat"}}`)
	h := http.Header{}
	h.Set("X-GitHub-Event", "push")
	h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	h.Set("X-Hub-Signature-256", "sha256=f6f7b3d6fe0a5d0b7c2a1b1d0d6ad0d9ee3f28a1c0e0c5a6d9e8f2c2b1a0e9d8")

	k, err := forge.Detect(h) // or forge.ParseKind(r.PathValue("forge"))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = forge.Authenticate(k, h, body, [][]byte{[]byte("not the secret")}, false, time.Now())
	if errors.Is(err, forge.ErrBadSignature) {
		fmt.Println("401:", err)
	}
	ev, err := forge.Parse(k, h, body) // only after Authenticate succeeded, in real code
	if err != nil {
		fmt.Println("400:", err)
		return
	}
	c := ev.Changes[0]
	fmt.Println(ev.Type, ev.Repository.FullName, c.Name, c.After, c.Deleted)
	// Output:
	// 401: authenticate github delivery: bad signature: X-Hub-Signature-256 matches none of the 1 configured secrets
	// push Codertocat/Hello-World main 0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c false
}
