package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/egress"
)

// TestDialRefusesLinkLocal goes through the sender's own transport, as a host name that
// resolved to the metadata address would, past the settings' literal-address check. Which
// addresses are refused is package egress's test; this one checks the wiring.
func TestDialRefusesLinkLocal(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	tr := s.client.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Error("the transport uses a proxy: the dial check would only see the proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := tr.DialContext(ctx, "tcp", "169.254.169.254:80")
	if err == nil {
		conn.Close()
		t.Fatal("dialled 169.254.169.254")
	}
	var re *egress.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an *egress.RefusedError", err)
	}
	// The refusal becomes a permanent error in the webhook's words.
	err = s.transportError(ctx, &url.URL{Scheme: "http", Host: "169.254.169.254", Path: "/latest"}, err)
	if !delivery.IsPermanent(err) || !errors.As(err, &re) || !strings.HasSuffix(err.Error(), "webhooks may not call it") {
		t.Errorf("transportError = %v, want a permanent refusal", err)
	}
}

// TestRefuseLoopback: with RefuseLoopback (AWS Lambda, where 127.0.0.1 is the Runtime API) a
// webhook on loopback is refused for good; without it, it is delivered.
func TestRefuseLoopback(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	target := delivery.Target{Settings: map[string]any{"url": srv.URL}}
	jobs := []delivery.Job{{MessageID: "m1", Payload: []byte(`{"messageId":"m1"}`)}}
	if err := New(Options{}).Send(context.Background(), target, jobs); err != nil {
		t.Fatalf("loopback without RefuseLoopback: %v", err)
	}
	err := New(Options{RefuseLoopback: true}).Send(context.Background(), target, jobs)
	var re *egress.RefusedError
	if !errors.As(err, &re) || !delivery.IsPermanent(err) {
		t.Fatalf("loopback with RefuseLoopback: %v, want a permanent refused address", err)
	}
	if !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback with RefuseLoopback: %q does not say loopback", err)
	}
}
