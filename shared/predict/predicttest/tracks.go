package predicttest

import (
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/predict/model"
)

// Tracks are the track calls that make p's activity (events names d's event indexes): one
// per unit of each day's count, from noon a second apart, the day's revenue on the first, and
// a messageId that is the same every time, so sending them again is a redelivery. Raw is the
// call as a client sends it (for /v1/import); ReceivedAt is the caller's to set.
func Tracks(p model.Profile, events []string) iter.Seq[message.Message] {
	return func(yield func(message.Message) bool) {
		for _, a := range p.Activity {
			for k := range a.Count {
				at := time.Unix(int64(a.Day)*86400, 0).UTC().Add(12*time.Hour + time.Duration(k)*time.Second)
				m := message.Message{Type: message.Track, MessageID: fmt.Sprintf("%s-%d-%d-%d", p.ID, a.Day, a.Event, k),
					UserID: p.ID, Event: events[a.Event], Timestamp: at}
				raw := map[string]any{"type": message.Track, "messageId": m.MessageID, "userId": p.ID, "event": m.Event, "timestamp": at}
				if k == 0 && a.Revenue > 0 {
					m.Properties = map[string]any{"revenue": float64(a.Revenue)}
					raw["properties"] = m.Properties
				}
				m.Raw, _ = json.Marshal(raw)
				if !yield(m) {
					return
				}
			}
		}
	}
}
