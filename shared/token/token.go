// Package token makes secrets and identifiers: bearer tokens and write keys (random, shown
// once, stored only as a SHA-256 hash) and prefixed, time-ordered resource IDs.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// Token prefixes say what a credential is when it turns up in a log or a support ticket.
const (
	OperatorPrefix  = "upo_"
	InvitePrefix    = "upi_"
	WorkspacePrefix = "upw_"
	AccessPrefix    = "upa_" // Profile API, per space
)

// Digits first, so the encoding keeps byte order and IDs sort as their timestamps do.
var lowerBase32 = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// New returns prefix followed by 32 random bytes, base32: 256 bits, so a plain SHA-256 of it
// is a safe stored form (no salt or slow hash needed for a secret nobody chose).
func New(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than returning short)
	return prefix + lowerBase32.EncodeToString(b)
}

// Hash is the stored form of a token: hex SHA-256.
func Hash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether tok hashes to hash.
func Matches(tok, hash string) bool {
	h := Hash(tok)
	return len(hash) == len(h) && subtle.ConstantTimeCompare([]byte(h), []byte(strings.ToLower(hash))) == 1
}

// IDs is a source of prefixed IDs: 48 bits of milliseconds then 80 random bits, so IDs
// sort by creation time (lists come out in creation order) and never collide in practice.
type IDs struct {
	Now func() time.Time
}

// New returns an ID such as "ws_01h...".
func (g IDs) New(prefix string) string {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(now().UnixMilli())<<16)
	rand.Read(b[6:])
	return prefix + lowerBase32.EncodeToString(b[:])
}
