package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/measure"
)

// Reading makes c a careful person: before each decision on a version that names no digest,
// it reads the measure and decides on the digest it was shown, as a page or `takedown act`
// on a terminal does. A body that sets "digest" (even to "") is sent as it is, so tests of
// stale and missing digests say what they send.
func Reading(c *client.Client) *client.Client {
	base := http.DefaultTransport
	if c.HTTP != nil && c.HTTP.Transport != nil {
		base = c.HTTP.Transport
	}
	c.HTTP = &http.Client{Transport: reader{base: base}}
	return c
}

type reader struct{ base http.RoundTripper }

func (rd reader) RoundTrip(req *http.Request) (*http.Response, error) {
	rest, ok := strings.CutPrefix(req.URL.Path, "/api/v1/measures/")
	id, op, ok2 := strings.Cut(rest, "/actions/")
	if req.Method != http.MethodPost || !ok || !ok2 || !measure.Judges(authz.Op(op)) || req.Body == nil {
		return rd.base.RoundTrip(req)
	}
	raw, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if json.Unmarshal(raw, &body) == nil {
		if body == nil { // a body of null
			body = map[string]any{}
		}
		if _, set := body["digest"]; !set {
			if d, err := rd.digest(req, id); err == nil && d != "" {
				body["digest"] = d
				raw, _ = json.Marshal(body)
			}
		}
	}
	req = req.Clone(req.Context())
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	return rd.base.RoundTrip(req)
}

// digest reads the measure as the request's sender.
func (rd reader) digest(orig *http.Request, id string) (string, error) {
	u := *orig.URL
	u.Path, u.RawQuery = "/api/v1/measures/"+id, ""
	req, err := http.NewRequestWithContext(orig.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", orig.Header.Get("Authorization"))
	resp, err := rd.base.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var m struct {
		Digest string `json:"digest"`
	}
	err = json.NewDecoder(resp.Body).Decode(&m)
	return m.Digest, err
}
