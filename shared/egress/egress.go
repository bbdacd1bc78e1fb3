// Package egress decides where the service may connect on a tenant's behalf: the addresses
// that a destination's settings (a webhook URL, an S3-compatible endpoint) may lead to.
//
// Why: the service runs with cloud credentials of its own, and the cloud metadata service
// hands them to any local process that asks over plain HTTP: at 169.254.169.254 (AWS, Google
// Cloud, Azure; 169.254.170.2 serves ECS task credentials) and at fd00:ec2::254 (EC2 over
// IPv6). A tenant who could aim a destination there would have the service fetch its own
// credentials and send them, or quote them in an error, to the tenant. So Forbidden refuses
// every link-local address (169.254.0.0/16, fe80::/10, and the link-local multicast ranges)
// and fd00:ec2::254, however written: IPv4-mapped (::ffff:169.254.169.254) or with a zone.
// Loopback and private networks stay allowed: local receivers, the local stack and tests use
// them.
//
// Where: Control is a net.Dialer Control, run on the resolved address about to be connected,
// so a host name that resolves there, or is rebound there after any earlier check, is refused
// too; a proxy would hide that address, so callers dial directly. Control(true) also refuses
// loopback and unspecified addresses, for where loopback serves the service itself (in AWS
// Lambda, 127.0.0.1 is the function's Runtime API). Settings are checked earlier too, on their
// literal addresses (Forbidden), so the mistake shows when a destination is saved (package
// workspace also refuses the metadata host names and unusual IPv4 spellings there).
//
// The package imports no net/http: the workspace domain package uses it.
package egress

import (
	"fmt"
	"net/netip"
	"syscall"
)

// ec2MetadataV6 is the EC2 instance metadata service's IPv6 address (Nitro instances); it is
// not link-local.
var ec2MetadataV6 = netip.MustParseAddr("fd00:ec2::254")

// Forbidden reports whether the service may never connect to a on a tenant's behalf:
// link-local unicast and multicast, and fd00:ec2::254, IPv4-mapped and zoned forms included.
func Forbidden(a netip.Addr) bool {
	a = a.Unmap().WithZone("") // ::ffff:169.254.169.254 is 169.254.169.254
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a == ec2MetadataV6
}

// ownHost reports whether a reaches this host itself: loopback or unspecified (a connection
// to 0.0.0.0 or :: lands on this host too).
func ownHost(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsUnspecified()
}

// RefusedError is a connection refused to Addr. Retrying cannot mend it: callers make it a
// permanent error.
type RefusedError struct {
	Addr netip.Addr
}

func (e *RefusedError) Error() string {
	if ownHost(e.Addr) {
		return fmt.Sprintf("address %s is loopback or unspecified", e.Addr)
	}
	return fmt.Sprintf("address %s is link-local or the cloud metadata service", e.Addr)
}

// Control returns a net.Dialer Control that refuses the Forbidden addresses with a
// *RefusedError, and loopback and unspecified addresses too when refuseLoopback is set. An
// address that is not an IP address and port (not a TCP or UDP dial) is refused as well.
func Control(refuseLoopback bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %q: not an IP address and port", address)
		}
		if a := ap.Addr(); Forbidden(a) || (refuseLoopback && ownHost(a)) {
			return &RefusedError{Addr: a}
		}
		return nil
	}
}
