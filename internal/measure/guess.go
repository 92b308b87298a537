package measure

import (
	"net/netip"
	"regexp"
	"strings"
)

var asn = regexp.MustCompile(`(?i)^AS\d+$`)

// GuessKind names the kind of a bare target value, for lists that give only values (a CLI
// file, the web form): ip, cidr, url, asn, else domain. Validation then checks the value.
func GuessKind(v string) string {
	if _, err := netip.ParseAddr(v); err == nil {
		return "ip"
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return "cidr"
	}
	if strings.Contains(v, "://") {
		return "url"
	}
	if asn.MatchString(v) {
		return "asn"
	}
	return "domain"
}
