package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestPanelResources: a resource is refused with a bad capacity (beside the field), created,
// edited, given an alias and deleted, each step checked through the API.
func TestPanelResources(t *testing.T) {
	e, base := panel(t)
	dom := e.CreateDomain(t, nil)
	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/resources")))
	waitText(t, ctx, "#resources tbody", "No resource.")
	axe(t, ctx, "resources")

	room := "room1@" + dom
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-address"), "room1"),
		chromedp.SendKeys(chromedp.ID("f-display-name"), "Room One"),
		chromedp.SendKeys(chromedp.ID("f-location"), "Floor 2"),
		chromedp.SendKeys(chromedp.ID("f-capacity"), "-4"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-booking-policy").value = "manual"`),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-notify-addresses").value = "facilities@`+dom+`"`),
		chromedp.Click(chromedp.CSS(`#create-resource button.primary`)),
	))
	fieldError(t, ctx, "f-capacity", "")
	require.NotEmpty(t, text(t, ctx, "#f-capacity-err"))
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/resources/"+room, e.AdminToken, nil).Status)
	axe(t, ctx, "resource-create-refused")

	require.NoError(t, chromedp.Do(ctx,
		setField("f-capacity", "12"),
		chromedp.Click(chromedp.CSS(`#create-resource button.primary`)),
	))
	waitPath(t, ctx, "/resources/"+room)
	waitText(t, ctx, ".flash", "Created.")
	x := e.Do(t, http.MethodGet, "/api/v1/resources/"+room, e.AdminToken, nil).JSON(t)
	require.Equal(t, "Room One", x["display_name"])
	require.Equal(t, "location", x["type"])
	require.Equal(t, float64(12), x["capacity"])
	require.Equal(t, "Floor 2", x["location"])
	require.Equal(t, "manual", x["booking_policy"])
	require.Equal(t, []any{"facilities@" + dom}, x["notify_addresses"])
	axe(t, ctx, "resource")

	// Edit: another name, type, capacity and policy; the notification list emptied.
	require.NoError(t, chromedp.Do(ctx,
		setField("f-display-name", "Projector"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-type").value = "equipment"`),
		setField("f-capacity", "0"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-booking-policy").value = "auto_decline"`),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-notify-addresses").value = ""`),
		setField("f-max-conflicts", "2"),
		chromedp.Click(chromedp.CSS(`#resource-settings button.primary`)),
	))
	waitText(t, ctx, ".flash", "Saved.")
	x = e.Do(t, http.MethodGet, "/api/v1/resources/"+room, e.AdminToken, nil).JSON(t)
	require.Equal(t, "Projector", x["display_name"])
	require.Equal(t, "equipment", x["type"])
	require.Equal(t, float64(0), x["capacity"])
	require.Equal(t, float64(2), x["max_conflicts"])
	require.Equal(t, "auto_decline", x["booking_policy"])
	require.Empty(t, x["notify_addresses"])
	require.Equal(t, "Projector", attr(t, ctx, "f-display-name", "value"), "the page shows what was saved")

	// An alias.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-alias"), "beamer@"+dom),
		chromedp.Click(chromedp.CSS(`#aliases + form button`)),
	))
	waitText(t, ctx, "#aliases", "beamer@"+dom)
	require.Equal(t, []any{"beamer@" + dom}, e.Do(t, http.MethodGet, "/api/v1/resources/"+room, e.AdminToken, nil).JSON(t)["aliases"])

	// The list shows it; deleting it takes it away.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/resources")))
	waitText(t, ctx, "#resources tbody", "Projector")
	narrow(t, ctx, base+"/resources/"+room, "resource-narrow")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/resources/"+room)))
	waitText(t, ctx, "h1", room)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("f-confirm")),
		chromedp.Click(chromedp.CSS(`#resource-delete button.danger`)),
	))
	waitPath(t, ctx, "/domains/"+dom+"/resources")
	waitText(t, ctx, ".flash", "Deleted.")
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/resources/"+room, e.AdminToken, nil).Status)
}

// attr reads a property of the element with id.
func attr(t *testing.T, ctx context.Context, id, prop string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(document.getElementById(`+js(id)+`)[`+js(prop)+`])`))
	require.NoError(t, err)
	return s
}
