package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

const proofHeader = "c2sp.org/tlog-proof@v1"

// FormatProof writes a c2sp.org/tlog-proof document: the entry's index, its inclusion proof
// and the signed checkpoint it leads to.
func FormatProof(index int64, p tlog.RecordProof, checkpoint []byte) []byte {
	var b bytes.Buffer
	b.WriteString(proofHeader + "\n")
	fmt.Fprintf(&b, "index %d\n", index)
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(checkpoint)
	return b.Bytes()
}

// ParseProof reads a document written by FormatProof.
func ParseProof(doc []byte) (index int64, p tlog.RecordProof, checkpoint []byte, err error) {
	head, ck, ok := bytes.Cut(doc, []byte("\n\n"))
	if !ok {
		return 0, nil, nil, errors.New("proof: no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 2 || lines[0] != proofHeader {
		return 0, nil, nil, errors.New("proof: not a " + proofHeader + " document")
	}
	rest := lines[1:]
	if strings.HasPrefix(rest[0], "extra ") {
		rest = rest[1:]
	}
	if len(rest) == 0 || !strings.HasPrefix(rest[0], "index ") {
		return 0, nil, nil, errors.New("proof: no index line")
	}
	index, err = strconv.ParseInt(strings.TrimPrefix(rest[0], "index "), 10, 64)
	if err != nil || index < 0 {
		return 0, nil, nil, errors.New("proof: bad index")
	}
	for _, l := range rest[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return 0, nil, nil, fmt.Errorf("proof: bad hash line %q", l)
		}
		p = append(p, tlog.Hash(h))
	}
	return index, p, ck, nil
}
