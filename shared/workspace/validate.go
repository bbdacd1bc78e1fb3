package workspace

import (
	"maps"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/egress"
	"github.com/unifiedprofiles/up/shared/errcode"
)

// validName checks a display name: present, at most MaxNameLength characters, no control
// characters, no surrounding spaces (they make two names look alike).
func validName(field, name string) error {
	switch {
	case name == "":
		return errcode.InvalidField(field, "is required")
	case !utf8.ValidString(name):
		return errcode.InvalidField(field, "is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLength:
		return errcode.InvalidField(field, "is %d characters long; the limit is %d", utf8.RuneCountInString(name), MaxNameLength)
	case strings.TrimSpace(name) != name:
		return errcode.InvalidField(field, "must not start or end with spaces")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errcode.InvalidField(field, "must not contain control characters")
	}
	return nil
}

// oneOf checks that v is one of allowed.
func oneOf(field, v string, allowed []string) error {
	if v == "" {
		return errcode.InvalidField(field, "is required; one of %s", strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, v) {
		return errcode.InvalidField(field, "%q is not allowed; use one of %s", errcode.Clip(v), strings.Join(allowed, ", "))
	}
	return nil
}

// A Twilio account SID: "AC" and 32 hex digits.
var accountSIDPattern = regexp.MustCompile(`^AC[0-9a-f]{32}$`)

func validAccountSID(sid string) error {
	if sid == "" {
		return errcode.InvalidField("account_sid", "is required")
	}
	if !accountSIDPattern.MatchString(sid) {
		return errcode.InvalidField("account_sid", "must be a Twilio account SID: AC followed by 32 lowercase hex digits")
	}
	return nil
}

const maxURLLength = 2048

func validWebsiteURL(field, raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > maxURLLength {
		return errcode.InvalidField(field, "is %d characters long; the limit is %d", len(raw), maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errcode.InvalidField(field, "must be an absolute http or https URL")
	}
	return nil
}

// Destination settings: an object of plain values, small enough to stay one item. A
// webhook's headers are the one nested value: an object of strings.
const (
	maxSettings        = 50
	maxSettingKey      = 100
	maxSettingValueLen = 2000
	maxWebhookHeaders  = 20
	maxWebhookBatch    = 100
	maxS3Prefix        = 512
)

// destinationSettingKeys are the settings each type knows. Any other key is refused: a
// misspelt optional setting would otherwise be ignored without a word.
var destinationSettingKeys = map[string][]string{
	DestinationTypeS3:                 {"bucket", "prefix", "region", "endpoint", "access_key_id", "secret_access_key"},
	DestinationTypeWebhook:            {"url", "secret", "headers", "batch_size"},
	DestinationTypeSegmentProfiles:    {"space_id"},
	DestinationTypeSegmentConnections: {"source_id"},
}

// validSettings checks the settings of a destination of type typ and returns them without
// the ones given as null or "" (unset). It checks what needs no lookup; the spaces and
// sources the settings name are checked by checkDestinationRefs.
func validSettings(typ string, settings map[string]any) (map[string]any, error) {
	if len(settings) > maxSettings {
		return nil, errcode.InvalidField("settings", "has %d keys; the limit is %d", len(settings), maxSettings)
	}
	known := destinationSettingKeys[typ]
	out := make(map[string]any, len(settings))
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		v := settings[k]
		field := "settings." + k
		if k == "" || len(k) > maxSettingKey {
			return nil, errcode.InvalidField("settings", "keys must be 1 to %d characters", maxSettingKey)
		}
		if !slices.Contains(known, k) {
			return nil, errcode.InvalidField(field, "is not a setting of a %s destination; its settings are %s", typ, strings.Join(known, ", "))
		}
		switch v := v.(type) {
		case nil:
			continue
		case string:
			if len(v) > maxSettingValueLen {
				return nil, errcode.InvalidField(field, "is %d characters long; the limit is %d", len(v), maxSettingValueLen)
			}
			if v == "" {
				continue
			}
		case bool, float64:
		case map[string]any:
			if k != "headers" {
				return nil, errcode.InvalidField(field, "must be a string, number, boolean or null")
			}
			if len(v) == 0 {
				continue
			}
		default:
			return nil, errcode.InvalidField(field, "must be a string, number, boolean or null")
		}
		out[k] = v
	}
	var err error
	switch typ {
	case DestinationTypeS3:
		err = validS3Settings(out)
	case DestinationTypeWebhook:
		err = validWebhookSettings(out)
	case DestinationTypeSegmentProfiles:
		_, err = stringSetting(out, "space_id", true)
	case DestinationTypeSegmentConnections:
		_, err = stringSetting(out, "source_id", true)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stringSetting returns the string setting key, "" when it is unset.
func stringSetting(settings map[string]any, key string, required bool) (string, error) {
	v, ok := settings[key]
	if !ok {
		if required {
			return "", errcode.InvalidField("settings."+key, "is required")
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", errcode.InvalidField("settings."+key, "must be a string")
	}
	return s, nil
}

var (
	// S3 bucket names (general purpose buckets): lowercase letters, digits, '.' and '-'.
	s3BucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ipv4Pattern     = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)
	// AWS regions: us-east-1, eu-central-2, ap-southeast-1, us-gov-west-1, …
	awsRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
)

func validS3Settings(settings map[string]any) error {
	bucket, err := stringSetting(settings, "bucket", true)
	if err != nil {
		return err
	}
	switch {
	case len(bucket) < 3 || len(bucket) > 63:
		return errcode.InvalidField("settings.bucket", "must be 3 to 63 characters long (an S3 bucket name)")
	case !s3BucketPattern.MatchString(bucket):
		return errcode.InvalidField("settings.bucket", "must be an S3 bucket name: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit")
	case strings.Contains(bucket, ".."):
		return errcode.InvalidField("settings.bucket", "must not contain two periods in a row (S3 bucket naming)")
	case ipv4Pattern.MatchString(bucket):
		return errcode.InvalidField("settings.bucket", "must not be formatted as an IP address (S3 bucket naming)")
	}
	prefix, err := stringSetting(settings, "prefix", false)
	if err != nil {
		return err
	}
	switch {
	case len(prefix) > maxS3Prefix:
		return errcode.InvalidField("settings.prefix", "is %d bytes long; the limit is %d", len(prefix), maxS3Prefix)
	case strings.HasPrefix(prefix, "/"):
		return errcode.InvalidField("settings.prefix", "must not start with '/': object keys are relative to the bucket (e.g. \"events/\")")
	case !utf8.ValidString(prefix):
		return errcode.InvalidField("settings.prefix", "is not valid UTF-8")
	}
	region, err := stringSetting(settings, "region", false)
	if err != nil {
		return err
	}
	if region != "" && !awsRegionPattern.MatchString(region) {
		return errcode.InvalidField("settings.region", "%q is not an AWS region name such as us-east-1", errcode.Clip(region))
	}
	endpoint, err := stringSetting(settings, "endpoint", false)
	if err != nil {
		return err
	}
	if endpoint != "" {
		if err := validDeliveryURL("settings.endpoint", endpoint); err != nil {
			return err
		}
	}
	keyID, err := stringSetting(settings, "access_key_id", false)
	if err != nil {
		return err
	}
	secret, err := stringSetting(settings, "secret_access_key", false)
	if err != nil {
		return err
	}
	// Both keys, always: the service never writes to a bucket named by a tenant with its own
	// role, or one tenant could write into any bucket that trusts that role (another
	// tenant's among them).
	switch {
	case keyID == "":
		return errcode.InvalidField("settings.access_key_id", "is required: give the access key of an IAM user (or role keys) allowed s3:PutObject on the bucket; this service never writes with its own role")
	case secret == "":
		return errcode.InvalidField("settings.secret_access_key", "is required: give the secret access key that goes with settings.access_key_id (kept sealed, never shown); this service never writes with its own role")
	}
	return nil
}

// reservedWebhookHeaders are set by delivery itself; a user's value would break the request
// or forge its signature.
var reservedWebhookHeaders = []string{"Content-Type", "Content-Length", "Host", "X-Signature"}

func validWebhookSettings(settings map[string]any) error {
	u, err := stringSetting(settings, "url", true)
	if err != nil {
		return err
	}
	if err := validDeliveryURL("settings.url", u); err != nil {
		return err
	}
	if _, err := stringSetting(settings, "secret", false); err != nil {
		return err
	}
	if v, ok := settings["batch_size"]; ok {
		n, isNum := v.(float64)
		if !isNum || n != math.Trunc(n) || n < 1 || n > maxWebhookBatch {
			return errcode.InvalidField("settings.batch_size", "must be a whole number from 1 to %d (messages per request)", maxWebhookBatch)
		}
	}
	if v, ok := settings["headers"]; ok {
		headers, isObj := v.(map[string]any)
		if !isObj {
			return errcode.InvalidField("settings.headers", "must be an object of header names to string values")
		}
		if err := validWebhookHeaders(headers); err != nil {
			return err
		}
	}
	return nil
}

// validWebhookHeaders checks header names and values. Values are never quoted back: they
// often carry credentials.
func validWebhookHeaders(headers map[string]any) error {
	if len(headers) > maxWebhookHeaders {
		return errcode.InvalidField("settings.headers", "has %d headers; the limit is %d", len(headers), maxWebhookHeaders)
	}
	seen := make(map[string]bool, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		field := "settings.headers." + errcode.Clip(name)
		if !ValidHeaderName(name) {
			return errcode.InvalidField(field, "is not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)")
		}
		for _, r := range reservedWebhookHeaders {
			if strings.EqualFold(name, r) {
				return errcode.InvalidField(field, "is set by delivery itself; %s cannot be given", strings.Join(reservedWebhookHeaders, ", "))
			}
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			return errcode.InvalidField(field, "is given twice (header names ignore case)")
		}
		seen[lower] = true
		value, ok := headers[name].(string)
		switch {
		case !ok:
			return errcode.InvalidField(field, "must be a string")
		case len(value) > maxSettingValueLen:
			return errcode.InvalidField(field, "is %d characters long; the limit is %d", len(value), maxSettingValueLen)
		case !ValidHeaderValue(value):
			return errcode.InvalidField(field, "must not contain control characters (line breaks included)")
		}
	}
	return nil
}

// ValidHeaderName reports whether name is an RFC 9110 token (a webhook destination's
// header names are checked when saved and again when sent).
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidHeaderValue refuses control characters but the tab: a CR or LF would inject headers.
func ValidHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validDeliveryURL checks a URL that delivery will send to: absolute http or https, without
// credentials in it (they would be shown back; a webhook's go in its sealed headers), and
// not a cloud metadata service, which hands out the deployment's own credentials. Names
// that resolve there can only be refused when delivery dials (package egress).
func validDeliveryURL(field, raw string) error {
	if len(raw) > maxURLLength {
		return errcode.InvalidField(field, "is %d characters long; the limit is %d", len(raw), maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errcode.InvalidField(field, "must be an absolute http or https URL")
	}
	if u.User != nil {
		return errcode.InvalidField(field, "must not hold a user name or password; put credentials in settings.headers (Authorization), which are kept sealed")
	}
	if why := refusedHost(u.Hostname()); why != "" {
		return errcode.InvalidField(field, "%s", why)
	}
	return nil
}

// refusedHost says why host may not be delivered to, "" when it may: a literal address
// egress.Forbidden refuses (delivery refuses it again when dialling), and, which only a
// check of the settings can see, a metadata host name or an IPv4 address spelt in a form
// some resolvers read as one.
func refusedHost(host string) string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "metadata.google.internal" {
		return "must not point at a cloud metadata service"
	}
	addr, err := netip.ParseAddr(h)
	if err != nil {
		if legacyIPv4(h) {
			// 0xA9FEA9FE or 169.254.43518: some resolvers read these as addresses.
			return "writes an IP address in a non-standard form; write it as four decimal numbers (a.b.c.d)"
		}
		return ""
	}
	if egress.Forbidden(addr) {
		return "must not be a link-local address (169.254.0.0/16, fe80::/10): the cloud metadata service lives there"
	}
	return ""
}

// legacyIPv4 reports whether s is an IPv4 address in a form inet_aton accepts beyond dotted
// decimal: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
func legacyIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return false
	}
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return false
		}
		// Every part but the last is one byte; the last fills the bytes that remain.
		limit := uint64(255)
		if i == len(parts)-1 {
			limit = 1<<(8*(5-len(parts))) - 1
		}
		if v > limit {
			return false
		}
	}
	return true
}
