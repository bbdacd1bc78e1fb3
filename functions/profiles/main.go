// Command profiles is the Profile API as an AWS Lambda behind API Gateway HTTP API (payload
// 2.0). It only wires: the handler is shared/httpapi, the same code the local stack serves.
package main

import (
	"log/slog"
	"net/http"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/lambdahttp"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	lambdahttp.Serve("profiles", func(mux *http.ServeMux, st store.Store, log *slog.Logger) {
		// No operator token here: the Profile API takes space access tokens only.
		svc := workspace.New(st, workspace.Options{})
		httpapi.MountProfiles(mux, svc, profile.New(st, profile.Options{}), httpapi.ProfilesOptions{Logger: log, Limits: st})
	})
}
