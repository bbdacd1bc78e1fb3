package workspace

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/unifiedprofiles/up/shared/browsersdk"
	"github.com/unifiedprofiles/up/shared/errcode"
)

// Snippet is the code a user pastes to start sending data from a source.
type Snippet struct {
	SourceID string
	Type     string
	Language string
	Code     string
}

// SourceSnippet returns the install snippet of a source, pointing its SDK at apiBase (the
// tracking API's base URL, e.g. https://api.example.com). Segment SDKs take a host override,
// so the stock SDKs are used unchanged.
// Caller: the workspace's token. Errors: forbidden, not_found, no_snippet (404: the source
// type connects without code, e.g. Salesforce through OAuth).
func (s *Service) SourceSnippet(ctx context.Context, p Principal, wsID, srcID, apiBase string) (Snippet, error) {
	src, err := s.GetSource(ctx, p, wsID, srcID)
	if err != nil {
		return Snippet{}, err
	}
	host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimRight(apiBase, "/"), "https://"), "http://")
	key := src.WriteKey
	out := Snippet{SourceID: src.ID, Type: src.Type}
	switch src.Type {
	case "javascript":
		out.Language = "html"
		out.Code = javascriptSnippet(key, strings.TrimRight(apiBase, "/"))
	case "swift":
		out.Language = "swift"
		out.Code = fmt.Sprintf(`import Segment

// analytics-swift, unchanged: it posts batches to https://<apiHost>/b and fetches its settings
// from https://<cdnHost>/projects/<writeKey>/settings, both on Unified Profiles.%[3]s
let analytics = Analytics(configuration: Configuration(writeKey: %[1]q)
    .apiHost(%[2]q)
    .cdnHost(%[2]q)
    .trackApplicationLifecycleEvents(true))
analytics.screen(title: "Home")`, key, host+"/v1", httpsOnly(apiBase))
	case "kotlin":
		out.Language = "kotlin"
		out.Code = fmt.Sprintf(`import com.segment.analytics.kotlin.android.Analytics

// analytics-kotlin, unchanged: it posts batches to https://<apiHost>/b and fetches its settings
// from https://<cdnHost>/projects/<writeKey>/settings, both on Unified Profiles.%[3]s
val analytics = Analytics(%[1]q, applicationContext) {
    apiHost = %[2]q
    cdnHost = %[2]q
    trackApplicationLifecycleEvents = true
}
analytics.screen("Home")`, key, host+"/v1", httpsOnly(apiBase))
	case "java", "personas":
		out.Language = "java"
		out.Code = fmt.Sprintf(`import com.segment.analytics.Analytics;
import com.segment.analytics.messages.IdentifyMessage;

// analytics-java, unchanged: endpoint() is the base URL, to which it adds /v1/import/.
Analytics analytics = Analytics.builder(%q).endpoint(%q).build();
analytics.enqueue(IdentifyMessage.builder().userId("user-123").traits(Map.of("email", "jane@example.com")));`, key, strings.TrimRight(apiBase, "/"))
	case "http", "twilio_event_streams":
		out.Language = "shell"
		out.Code = fmt.Sprintf(`curl %s/v1/track \
  -u %q: \
  -H 'Content-Type: application/json' \
  -d '{"userId":"user-123","event":"Order Completed","properties":{"total":42}}'`, strings.TrimRight(apiBase, "/"), key)
	default:
		return Snippet{}, errcode.New(errcode.NotFound, "no_snippet",
			"%s sources connect without code (%s connects through its own setup), so there is no snippet", src.Type, src.Name)
	}
	return out, nil
}

// httpsOnly is the warning the mobile snippets carry when this API is served over plain http
// (the local stack): analytics-swift and analytics-kotlin always use https.
func httpsOnly(apiBase string) string {
	if strings.HasPrefix(apiBase, "https://") {
		return ""
	}
	return `
// Note: these SDKs only speak https. This API is served at ` + apiBase + `: put it behind
// TLS (a tunnel, with UP_PUBLIC_URL set to its https address) before an app can reach it.`
}

// javascriptSnippet is Segment's own analytics.js snippet (SNIPPET_VERSION 5.2.1: a queue that
// records calls until the bundle loads) with two changes: the bundle is the analytics-next
// build vendored in this deployment (shared/browsersdk), and analytics._cdn points the bundle
// at this deployment for its settings (GET /v1/projects/{writeKey}/settings, which name the
// API host) and its lazily loaded chunks. Nothing is fetched from a third party.
func javascriptSnippet(writeKey, base string) string {
	return fmt.Sprintf(`<script>
  // Segment's analytics.js snippet 5.2.1, loading @segment/analytics-next %[3]s from Unified Profiles.
  !function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group","track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1){var c=document.querySelector("link[rel='canonical']");n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document.createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);t.src=%[2]s;var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey=%[1]s;analytics._cdn=%[4]s;analytics.SNIPPET_VERSION="5.2.1";
  analytics.load(%[1]s);
  analytics.page();
  }}();
</script>`, jsString(writeKey), jsString(base+browsersdk.BundlePath), browsersdk.Version, jsString(base))
}

// jsString quotes s as a JavaScript string literal that is also safe inside an HTML <script>
// element (JSON with <, > and & escaped).
func jsString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.Encode(s) // escapes <, > and & by default
	return strings.TrimSpace(b.String())
}
