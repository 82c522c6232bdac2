package api

// Route is one row of apiRoutes, for the tests of package api_test that walk every route.
type Route struct {
	Method, Path string
	Public       bool
}

// Routes returns every route of the API table.
func Routes() []Route {
	out := make([]Route, len(apiRoutes))
	for i, r := range apiRoutes {
		out[i] = Route{Method: r.Method, Path: r.Path, Public: r.Public}
	}
	return out
}
