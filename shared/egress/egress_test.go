package egress

import (
	"errors"
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// addrs: whether each address is Forbidden, and whether Control refuses it without and with
// refuseLoopback.
var addrs = []struct {
	addr                       string
	forbidden, loopbackRefused bool
}{
	// IPv4 link-local: the metadata service and ECS task credentials live there.
	{"169.254.169.254", true, true},
	{"169.254.170.2", true, true},
	{"169.254.0.1", true, true},
	{"169.254.255.255", true, true},
	{"224.0.0.1", true, true}, // link-local multicast
	// IPv6 link-local, and the EC2 metadata service's IPv6 address.
	{"fe80::1", true, true},
	{"febf::1", true, true},
	{"ff02::1", true, true}, // link-local multicast
	{"fd00:ec2::254", true, true},
	// IPv4-mapped and zoned forms of the same.
	{"::ffff:169.254.169.254", true, true},
	{"::ffff:a9fe:a9fe", true, true},
	{"fe80::1%eth0", true, true},
	{"fd00:ec2::254%eth0", true, true},
	// Loopback and unspecified: allowed, unless loopback is refused.
	{"127.0.0.1", false, true},
	{"127.1.2.3", false, true},
	{"::1", false, true},
	{"::ffff:127.0.0.1", false, true},
	{"0.0.0.0", false, true},
	{"::", false, true},
	{"::ffff:0.0.0.0", false, true},
	// Private networks and the public internet: allowed.
	{"10.0.0.1", false, false},
	{"192.168.1.1", false, false},
	{"169.255.0.1", false, false},
	{"169.253.255.255", false, false},
	{"fd00:ec2::253", false, false},
	{"fec0::1", false, false},
	{"fc00::1", false, false},
	{"93.184.216.34", false, false},
	{"2606:2800:220:1:248:1893:25c8:1946", false, false},
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	for _, tc := range addrs {
		if got := Forbidden(netip.MustParseAddr(tc.addr)); got != tc.forbidden {
			t.Errorf("Forbidden(%s) = %v, want %v", tc.addr, got, tc.forbidden)
		}
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	for _, refuseLoopback := range []bool{false, true} {
		control := Control(refuseLoopback)
		for _, tc := range addrs {
			a := netip.MustParseAddr(tc.addr)
			address := netip.AddrPortFrom(a, 443).String()
			want := tc.forbidden || (refuseLoopback && tc.loopbackRefused)
			err := control("tcp", address, nil)
			var re *RefusedError
			switch {
			case want && !errors.As(err, &re):
				t.Errorf("Control(%v)(%s) = %v, want a *RefusedError", refuseLoopback, address, err)
			case want && re.Addr != a:
				t.Errorf("Control(%v)(%s): refused %s", refuseLoopback, address, re.Addr)
			case !want && err != nil:
				t.Errorf("Control(%v)(%s) = %v, want nil", refuseLoopback, address, err)
			}
		}
		// Not an address and port: refused, but not as a refused address.
		err := control("unix", "/tmp/socket", nil)
		var re *RefusedError
		if err == nil || errors.As(err, &re) {
			t.Errorf("Control(%v) of a socket path = %v, want a plain error", refuseLoopback, err)
		}
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"169.254.169.254":        "address 169.254.169.254 is link-local or the cloud metadata service",
		"::ffff:169.254.169.254": "address ::ffff:169.254.169.254 is link-local or the cloud metadata service",
		"fd00:ec2::254":          "address fd00:ec2::254 is link-local or the cloud metadata service",
		"127.0.0.1":              "address 127.0.0.1 is loopback or unspecified",
		"::":                     "address :: is loopback or unspecified",
	} {
		if got := (&RefusedError{Addr: netip.MustParseAddr(addr)}).Error(); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// TestNoHTTP: the workspace domain package imports egress, so egress must not bring in
// net/http.
func TestNoHTTP(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "net/http" || strings.HasPrefix(path, "net/http/") || strings.HasPrefix(path, "github.com/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
