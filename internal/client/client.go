// Package client is a Go client of takedown's JSON API, used by the takedown CLI and the tests.
// It links no Temporal code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to one takedownd as one user.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Error is a refusal from the server.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message"`
	// Seen and Current name, in a stale_version refusal, the version decided on and the
	// measure's version now.
	Seen    int `json:"seen_version,omitempty"`
	Current int `json:"current_version,omitempty"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Login exchanges a username and password for a token and returns a client using it.
func Login(ctx context.Context, baseURL, username, password string) (*Client, error) {
	c := &Client{BaseURL: strings.TrimRight(baseURL, "/")}
	var out struct {
		Token string `json:"token"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/tokens", map[string]string{"username": username, "password": password}, &out); err != nil {
		return nil, fmt.Errorf("log in as %s: %w", username, err)
	}
	c.Token = out.Token
	return c, nil
}

// Do sends a JSON request (see DoWith).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.DoWith(ctx, method, path, nil, in, out)
}

// DoWith sends a JSON request with extra headers (in may be nil, an io.Reader for a raw body, or a value to encode)
// and decodes the JSON answer into out (which may be nil).
func (c *Client) DoWith(ctx context.Context, method, path string, header http.Header, in, out any) error {
	var body io.Reader
	contentType := ""
	switch v := in.(type) {
	case nil:
	case io.Reader:
		body, contentType = v, "application/octet-stream"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error *Error `json:"error"`
		}
		raw, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(raw, &e) != nil || e.Error == nil {
			return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(raw))}
		}
		return e.Error
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Measure is the part of a measure's state that clients use most.
type Measure struct {
	ID       string          `json:"id"`
	Case     string          `json:"case"`
	Stage    string          `json:"stage"`
	Version  int             `json:"version"`
	Digest   string          `json:"digest"`
	Targets  int             `json:"targets"`
	Evidence int             `json:"evidence"`
	Approval json.RawMessage `json:"approval,omitempty"`
	Facts    json.RawMessage `json:"facts,omitempty"`
}

// Decision is a review, vote, conflict declaration or gate, with the version and digest it
// was given on.
type Decision struct {
	Kind     string `json:"kind"`
	Version  int    `json:"version"`
	Digest   string `json:"digest"`
	By       string `json:"by"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// Decisions lists every decision recorded on a measure, oldest first.
func (c *Client) Decisions(ctx context.Context, measureID string) ([]Decision, error) {
	var out struct {
		Decisions []Decision `json:"decisions"`
	}
	err := c.Do(ctx, "GET", "/api/v1/measures/"+url.PathEscape(measureID)+"/decisions", nil, &out)
	return out.Decisions, err
}

// Record is an audit entry as the history endpoint returns it.
type Record struct {
	ID      string              `json:"id"`
	TS      string              `json:"ts"`
	Actor   struct{ ID string } `json:"actor"`
	Action  string              `json:"action"`
	Measure string              `json:"measure"`
	Version int                 `json:"version"`
	From    string              `json:"from"`
	To      string              `json:"to"`
	Reason  string              `json:"reason"`
	Details map[string]any      `json:"details"`
	Policy  string              `json:"policy_version"`
}

// CreateCase opens a case and returns its ID.
func (c *Client) CreateCase(ctx context.Context, title, summary string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := c.Do(ctx, "POST", "/api/v1/cases", map[string]any{"title": title, "summary": summary}, &out)
	return out.ID, err
}

// CreateMeasure opens a draft measure request with plan (any JSON-encodable plan).
func (c *Client) CreateMeasure(ctx context.Context, caseID string, plan any) (Measure, error) {
	var m Measure
	err := c.Do(ctx, "POST", "/api/v1/cases/"+url.PathEscape(caseID)+"/measures", map[string]any{"plan": plan}, &m)
	return m, err
}

// AddTargets appends targets to a draft.
func (c *Client) AddTargets(ctx context.Context, measureID string, targets any) (Measure, error) {
	var m Measure
	err := c.Do(ctx, "POST", "/api/v1/measures/"+url.PathEscape(measureID)+"/targets", map[string]any{"targets": targets}, &m)
	return m, err
}

// AddEvidence uploads an evidence file with its metadata.
func (c *Client) AddEvidence(ctx context.Context, measureID string, meta url.Values, content io.Reader) (map[string]any, error) {
	var out map[string]any
	err := c.Do(ctx, "POST", "/api/v1/measures/"+url.PathEscape(measureID)+"/evidence?"+meta.Encode(), content, &out)
	return out, err
}

// Act takes an action (an operation with its body) on a measure.
func (c *Client) Act(ctx context.Context, measureID, op string, body any) (Measure, error) {
	if body == nil {
		body = map[string]any{}
	}
	var m Measure
	err := c.Do(ctx, "POST", "/api/v1/measures/"+url.PathEscape(measureID)+"/actions/"+url.PathEscape(op), body, &m)
	return m, err
}

// ActOnce is Act with an idempotency key: sending the same key again (after a lost answer)
// returns the first outcome instead of taking the action twice.
func (c *Client) ActOnce(ctx context.Context, measureID, op, key string, body any) (Measure, error) {
	if key == "" {
		return c.Act(ctx, measureID, op, body)
	}
	if body == nil {
		body = map[string]any{}
	}
	var m Measure
	err := c.DoWith(ctx, "POST", "/api/v1/measures/"+url.PathEscape(measureID)+"/actions/"+url.PathEscape(op),
		http.Header{"Idempotency-Key": {key}}, body, &m)
	return m, err
}

// Measure reads a measure's state.
func (c *Client) Measure(ctx context.Context, measureID string) (Measure, error) {
	var m Measure
	err := c.Do(ctx, "GET", "/api/v1/measures/"+url.PathEscape(measureID), nil, &m)
	return m, err
}

// History reads a measure's audit entries in order.
func (c *Client) History(ctx context.Context, measureID string) ([]Record, error) {
	var out struct {
		Entries []Record `json:"entries"`
	}
	err := c.Do(ctx, "GET", "/api/v1/measures/"+url.PathEscape(measureID)+"/history", nil, &out)
	return out.Entries, err
}
