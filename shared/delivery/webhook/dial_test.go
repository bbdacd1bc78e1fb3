package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery"
)

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"169.254.169.254", true},
		{"169.254.0.1", true},
		{"169.254.255.255", true},
		{"::ffff:169.254.169.254", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"febf::1", true},
		{"fd00:ec2::254", true},
		{"ff02::1", true}, // link-local multicast
		{"224.0.0.1", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.0.0.1", false},
		{"192.168.1.1", false},
		{"169.255.0.1", false},
		{"fd00:ec2::253", false},
		{"fec0::1", false},
		{"93.184.216.34", false},
	}
	for _, tc := range tests {
		if got := forbidden(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("forbidden(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestDialRefusesLinkLocal goes through the sender's own transport, as a host name that
// resolved to the metadata address would, past the settings' literal-address check.
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
	var fe *forbiddenAddrError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a forbiddenAddrError", err)
	}
	if err := refuseForbidden("tcp6", "[fd00:ec2::254]:80", nil); !errors.As(err, &fe) {
		t.Errorf("fd00:ec2::254: err = %v", err)
	}
	if err := refuseForbidden("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("loopback refused: %v", err)
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
	var fe *forbiddenAddrError
	if !errors.As(err, &fe) || !delivery.IsPermanent(err) {
		t.Fatalf("loopback with RefuseLoopback: %v, want a permanent forbidden address", err)
	}
}
