package intel

import (
	"bytes"
	"fmt"
)

// LargeBundle writes a STIX 2.1 bundle of n indicators, each naming its own IPv4 address
// (from 10.0.0.0 on, counting up), shaped as producers write them: for tests and the
// import figure.
func LargeBundle(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"bundle","id":"bundle--0e6c1f6a-5d4b-4c0e-9f52-3a9d8c7b6a50","objects":[`)
	b.WriteString(`{"type":"identity","spec_version":"2.1","id":"identity--8c1f0e59-7a5b-4f3c-9d2e-1b0a9f8e7d6c","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","name":"Botnet sinkhole partner","identity_class":"organization"}`)
	for i := range n {
		a := 10<<24 | i
		fmt.Fprintf(&b, `,{"type":"indicator","spec_version":"2.1","id":"indicator--%08x-0000-4000-8000-%012x","created_by_ref":"identity--8c1f0e59-7a5b-4f3c-9d2e-1b0a9f8e7d6c","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","name":"Bot %d","indicator_types":["malicious-activity"],"pattern_type":"stix","pattern":"[ipv4-addr:value = '%d.%d.%d.%d']","valid_from":"2026-11-01T00:00:00Z"}`,
			i, i, i, a>>24, a>>16&255, a>>8&255, a&255)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}
