package audit_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
)

// The parsers of what an archive or a proof brings: whatever the bytes, they answer or refuse,
// never panic, and what they accept reads back the same. .ci/run fuzzes each for a few seconds.

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("takedown.local/audit\n3\n" + tlog.Hash{1}.String() + "\n")
	f.Add("o\n-1\nAAAA\n")
	f.Add("o\n99999999999999999999\n\n")
	f.Fuzz(func(t *testing.T, text string) {
		ck, err := audit.ParseCheckpoint(text)
		if err != nil {
			return
		}
		if ck.Size < 0 {
			t.Fatalf("accepted a negative size: %q", text)
		}
		again, err := audit.ParseCheckpoint(ck.Text())
		if err != nil || again != ck {
			t.Fatalf("%q parsed to %+v, which reads back as %+v (%v)", text, ck, again, err)
		}
	})
}

func FuzzParseProof(f *testing.F) {
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\ntakedown.local/audit\n1\n" + tlog.Hash{}.String() + "\n\n— x AAAA\n"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex -5\n"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 9223372036854775807\n" + strings.Repeat(tlog.Hash{}.String()+"\n", 70)))
	f.Fuzz(func(t *testing.T, doc []byte) {
		index, p, _, err := audit.ParseProof(doc)
		if err != nil {
			return
		}
		if index < 0 || len(p) > 64 {
			t.Fatalf("accepted index %d with %d hashes", index, len(p))
		}
	})
}

func FuzzSplitBundle(f *testing.F) {
	one := binary.BigEndian.AppendUint16(nil, 2)
	f.Add(append(one, '{', '}'))
	f.Add([]byte{0xff, 0xff, 'x'})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := audit.SplitBundle(data)
		if err != nil {
			return
		}
		var out []byte
		for _, r := range recs {
			out = binary.BigEndian.AppendUint16(out, uint16(len(r)))
			out = append(out, r...)
		}
		if string(out) != string(data) {
			t.Fatalf("%x split into %d records that join to %x", data, len(recs), out)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("origin takedown.local/audit\nlog takedown.local/audit+abcdef01+AQ\nquorum-members 2\nstrict\n")
	f.Add("emergency-notification -5h\ncommission-size 99999999999\n")
	f.Add("log a+01020304+AQ\nwitness w1 w1+01020304+BA\ngroup g 2 w1 w1\ngroup h any g\nquorum h\n")
	f.Fuzz(func(t *testing.T, text string) {
		pol, err := audit.ParsePolicy(text)
		if err != nil {
			return
		}
		if pol.QuorumMembers < 0 || pol.CommissionSize < 0 || pol.EmergencyNotification < 0 {
			t.Fatalf("accepted a negative setting: %+v from %q", pol, text)
		}
	})
}
