package guide_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/guide"
)

func TestWebhookDeliversSignedEvents(t *testing.T) {
	got := make(chan struct {
		sig  string
		body []byte
	}, 8)
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- struct {
			sig  string
			body []byte
		}{r.Header.Get("X-Cstalk-Signature"), b}
	}))
	defer gateway.Close()
	hook := guide.NewWebhook(gateway.URL, []byte("push-secret"), 16, nil)
	hook.Notify(t.Context(), 42, guide.Event{Type: guide.EventRequest, GsSeq: 7})
	select {
	case d := <-got:
		if d.sig != hook.Sign(d.body) {
			t.Fatalf("signature %q", d.sig)
		}
		var msg struct {
			AccountID int64       `json:"accountId"`
			Event     guide.Event `json:"event"`
		}
		if err := json.Unmarshal(d.body, &msg); err != nil || msg.AccountID != 42 || msg.Event.GsSeq != 7 || msg.Event.Type != guide.EventRequest {
			t.Fatalf("delivery %s: %v", d.body, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	// Close delivers what is queued.
	hook.Notify(t.Context(), 43, guide.Event{Type: guide.EventEnded, GsSeq: 7})
	hook.Close()
	select {
	case <-got:
	default:
		t.Fatal("queued event lost at close")
	}
	hook.Notify(t.Context(), 44, guide.Event{Type: guide.EventEnded}) // after Close: ignored, no panic
}

// TestWebhookCloseDoesNotWaitForADeadGateway: a gateway that never answers
// holds Close up for the grace only, not for every queued delivery.
func TestWebhookCloseDoesNotWaitForADeadGateway(t *testing.T) {
	release := make(chan struct{})
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer gateway.Close()
	defer close(release)
	hook := guide.NewWebhook(gateway.URL, []byte("push-secret"), 64, nil)
	for i := range 50 {
		hook.Notify(t.Context(), int64(i), guide.Event{Type: guide.EventWarning, GsSeq: 7})
	}
	closed := make(chan struct{})
	go func() { hook.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // 50 deliveries x 5 s each would be 250 s
		t.Fatal("Close waited for every delivery to a dead gateway")
	}
}
