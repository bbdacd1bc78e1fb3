// Package flex is the Twilio Flex domain: it verifies the X-Twilio-Signature of webhook
// requests (ValidSignature, Sign), normalises phone numbers to E.164 (NormalizePhone) and turns
// TaskRouter event callbacks into Segment-spec track messages (EventFromTaskRouter).
//
// It uses the standard library only: callers hand it the full request URL as a string and the
// decoded form as url.Values, so it knows nothing of net/http or AWS.
package flex
