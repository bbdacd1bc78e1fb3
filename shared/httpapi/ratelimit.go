package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/quota"
	"github.com/unifiedprofiles/up/shared/store"
)

// requestBudget is a per-key requests-per-second limit that holds across every instance
// serving the API (each Lambda instance, or the local stack): the budget of each second is
// counted in the store and leased in chunks (shared/quota).
type requestBudget struct {
	limiter *quota.Limiter
	what    string // "workspace" or "space", for the error
	api     string // "tracking" or "Profile API"
}

// newRequestBudget counts perSecond requests per key (fallback when perSecond ≤ 0) in st.
func newRequestBudget(st store.Store, name, api, what string, perSecond, fallback int, now func() time.Time) requestBudget {
	if perSecond <= 0 {
		perSecond = fallback
	}
	return requestBudget{limiter: quota.New(st, name, perSecond, now), what: what, api: api}
}

// take spends one request of key's budget, or answers rate_limited with Retry-After.
func (b requestBudget) take(w http.ResponseWriter, r *http.Request, key string) error {
	ok, wait, err := b.limiter.Take(r.Context(), key, 1)
	if err != nil {
		return err
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		return errcode.New(errcode.RateLimited, "rate_limited",
			"%s %s is over its %s limit of %d requests per second; retry after the Retry-After delay", b.what, key, b.api, b.limiter.Limit())
	}
	return nil
}

// retryAfterSeconds is wait as a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
