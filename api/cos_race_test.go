package api_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// A COS deleted while accounts are being given it: either the delete loses (409, in use) or no
// account that was created ends up pointing at the deleted COS.
func TestDeletingACOSRacingItsAssignment(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	for round := 0; round < 5; round++ {
		name := apitest.Unique("race")
		require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": name}).Status)
		var wg sync.WaitGroup
		created := make(chan string, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken,
					map[string]any{"local_part": apitest.Unique("u"), "cos": name})
				if r.Status == http.StatusCreated {
					created <- r.JSON(t)["address"].(string)
				}
			}()
		}
		del := e.Do(t, http.MethodDelete, "/api/v1/cos/"+name, e.AdminToken, nil)
		wg.Wait()
		close(created)
		var users []string
		for a := range created {
			users = append(users, a)
		}
		t.Logf("round %d: delete %d, %d accounts created with the COS", round, del.Status, len(users))
		switch del.Status {
		case http.StatusNoContent:
			// Every account that got the COS was created before the delete saw... nothing: so none.
			require.Empty(t, users, "round %d: accounts created with a COS that was then deleted", round)
		case http.StatusConflict:
			require.NotEmpty(t, users)
		default:
			t.Fatalf("round %d: delete answered %d: %s", round, del.Status, del.Body)
		}
	}
}
