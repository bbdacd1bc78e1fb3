package workspace

import (
	"context"
	"fmt"
	"strings"

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
	protocol := "https"
	if strings.HasPrefix(apiBase, "http://") {
		protocol = "http"
	}
	key := src.WriteKey
	out := Snippet{SourceID: src.ID, Type: src.Type}
	switch src.Type {
	case "javascript":
		out.Language = "html"
		out.Code = fmt.Sprintf(`<script type="module">
  // Segment's analytics-next, unchanged; only its API host points at Unified Profiles.
  import { AnalyticsBrowser } from "https://esm.sh/@segment/analytics-next@1";
  window.analytics = AnalyticsBrowser.load({
    writeKey: %[1]q,
    cdnSettings: { integrations: { "Segment.io": { apiKey: %[1]q, apiHost: %[2]q, protocol: %[3]q } } },
  });
  window.analytics.page();
</script>`, key, host+"/v1", protocol)
	case "swift":
		out.Language = "swift"
		out.Code = fmt.Sprintf(`import Segment

let analytics = Analytics(configuration: Configuration(writeKey: %q)
    .apiHost(%q)
    .trackApplicationLifecycleEvents(true))
analytics.screen(title: "Home")`, key, host+"/v1")
	case "kotlin":
		out.Language = "kotlin"
		out.Code = fmt.Sprintf(`import com.segment.analytics.kotlin.android.Analytics

val analytics = Analytics(%q, applicationContext) {
    apiHost = %q
    trackApplicationLifecycleEvents = true
}
analytics.screen("Home")`, key, host+"/v1")
	case "java", "personas":
		out.Language = "java"
		out.Code = fmt.Sprintf(`import com.segment.analytics.Analytics;
import com.segment.analytics.messages.IdentifyMessage;

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
