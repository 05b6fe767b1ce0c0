package guide

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Webhook is a Notifier for mobile push: every event is POSTed as JSON
// {"accountId","event"} to a URL (the push gateway), signed with
// X-Cstalk-Signature: sha256=HMAC-SHA256(secret, body). Deliveries go
// through a bounded queue and one sender goroutine; when the queue is full
// the event is dropped and logged (apps resynchronise with the session
// check), so a slow gateway never holds a guide up.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	log    *slog.Logger
	queue  chan webhookDelivery
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	// ctx ends deliveries still running when Close's grace is over, so a
	// dead gateway cannot hold a shutdown up.
	ctx    context.Context
	cancel context.CancelFunc
}

// webhookCloseGrace is how long Close keeps delivering what is queued.
const webhookCloseGrace = 5 * time.Second

type webhookDelivery struct {
	AccountID int64 `json:"accountId"`
	Event     Event `json:"event"`
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook starts the sender; Close stops it.
func NewWebhook(url string, secret []byte, queue int, log *slog.Logger) *Webhook {
	if log == nil {
		log = slog.Default()
	}
	w := &Webhook{
		url: url, secret: secret, client: &http.Client{Timeout: 5 * time.Second},
		log: log.With("component", "guide-webhook"), queue: make(chan webhookDelivery, max(queue, 1)),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

// Notify queues ev for accountID.
func (w *Webhook) Notify(_ context.Context, accountID int64, ev Event) {
	select {
	case <-w.stop:
		return
	default:
	}
	select {
	case w.queue <- webhookDelivery{AccountID: accountID, Event: ev}:
	default:
		w.log.Warn("push queue full, event dropped", "account", accountID, "type", ev.Type)
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	for {
		select {
		case d := <-w.queue:
			w.send(d)
		case <-w.stop:
			// Deliver what is queued, then stop.
			for {
				select {
				case d := <-w.queue:
					w.send(d)
				default:
					return
				}
			}
		}
	}
}

// Sign returns the signature header value of body.
func (w *Webhook) Sign(body []byte) string {
	mac := hmac.New(sha256.New, w.secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *Webhook) send(d webhookDelivery) {
	if err := w.post(d); err != nil {
		w.log.Warn("push not delivered", "account", d.AccountID, "type", d.Event.Type, "err", err)
	}
}

func (w *Webhook) post(d webhookDelivery) error {
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Cstalk-Signature", w.Sign(body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gateway answered %s", resp.Status)
	}
	return nil
}

// Close delivers what is queued for up to webhookCloseGrace, drops the
// rest (logged), and stops the sender.
func (w *Webhook) Close() error {
	w.once.Do(func() { close(w.stop) })
	grace := time.NewTimer(webhookCloseGrace)
	defer grace.Stop()
	select {
	case <-w.done:
	case <-grace.C:
		w.cancel()
		<-w.done
	}
	w.cancel()
	return nil
}
