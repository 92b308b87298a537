package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/webhook"
)

// TestWebhooksStayOutOfTheNetwork: a person's webhook cannot make the server call a loopback
// (or private, link-local) address unless the operator allows it, follows no redirect, and
// tells the person only that it could not reach the receiver.
func TestWebhooksStayOutOfTheNetwork(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	n := service.Notice{ID: "n-1", Channel: "webhook", Address: target.URL, Kind: service.NoticeWaiting, Measure: "m-1", Secret: webhook.NewSecret()}
	ctx := context.Background()
	if err := (&Sender{}).Send(ctx, n); err == nil || !strings.Contains(err.Error(), "loopback, private or link-local") {
		t.Fatalf("a webhook to loopback: %v", err)
	}
	for _, addr := range []string{"http://169.254.169.254/latest", "http://[::1]:1/", "http://10.0.0.1:9/", "http://0.0.0.0:5432/"} {
		n.Address = addr
		if err := (&Sender{}).Send(ctx, n); err == nil || !strings.Contains(err.Error(), "loopback, private or link-local") {
			t.Errorf("a webhook to %s: %v", addr, err)
		}
	}
	n.Address = redirect.URL
	if err := (&Sender{AllowPrivate: true}).Send(ctx, n); err == nil || hits.Load() != 0 {
		t.Fatalf("a redirect was followed: %v, %d hits", err, hits.Load())
	}
	n.Address = "http://127.0.0.1:1/"
	if err := (&Sender{AllowPrivate: true}).Send(ctx, n); err == nil || err.Error() != "the webhook could not be reached" {
		t.Fatalf("a closed port: %v", err)
	}
	n.Address = target.URL
	if err := (&Sender{AllowPrivate: true}).Send(ctx, n); err != nil || hits.Load() != 1 {
		t.Fatalf("an allowed receiver: %v, %d hits", err, hits.Load())
	}
}
