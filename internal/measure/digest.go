package measure

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/gowebpki/jcs"
)

// Digest is a version's digest: "sha256:" and the SHA-256, in hex, of its body in RFC 8785
// canonical form, so an auditor recomputes it from the body whatever its key order. The seal,
// the checks of a stored body against it, the pages and reconciliation all compute it here.
func Digest(body []byte) (string, error) {
	canon, err := jcs.Transform(body)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
