package webhook

import (
	"net/http"
	"testing"
	"time"
)

// TestStandardWebhooksVector: the specification's own example signs as it says.
func TestStandardWebhooksVector(t *testing.T) {
	// From standard-webhooks' reference libraries' tests (the same secret, id, time and body).
	s, err := NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,other v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := s.Verify(h, []byte(`{"test": 2432232314}`), time.Unix(1614265330+60, 0), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(h, []byte(`{"test": 2432232315}`), time.Unix(1614265330, 0), 5*time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := s.Verify(h, []byte(`{"test": 2432232314}`), time.Unix(1614265330+3600, 0), 5*time.Minute); err == nil {
		t.Fatal("an hour-old event verified")
	}
	if _, err := NewSigner("whsec_short"); err == nil {
		t.Fatal("a short secret was accepted")
	}
}
