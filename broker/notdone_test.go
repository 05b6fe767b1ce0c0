package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// notDoneApp refuses SENDs to pub/notdone with ErrNotDone, as chat does for
// a message it could not store, after telling the client privately.
type notDoneApp struct{ testApp }

func (a *notDoneApp) HandleSend(ctx context.Context, c *Conn, dest string, h Header, body []byte) error {
	if dest == "pub/notdone" {
		_ = a.srv.SendPrivate(ctx, c.ID(), []byte(`{"eventName":"ERROR"}`))
		return fmt.Errorf("not stored: %w", ErrNotDone)
	}
	return a.testApp.HandleSend(ctx, c, dest, h, body)
}

// TestNotDoneWithholdsReceipt: a SEND refused with ErrNotDone gets no
// RECEIPT, alone or inside a transaction, while the connection stays and the
// next frame's receipt arrives as usual.
func TestNotDoneWithholdsReceipt(t *testing.T) {
	app := &notDoneApp{}
	srv, err := New(DefaultConfig(), app, NewMemoryBus(), prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	app.srv = srv
	mux := http.NewServeMux()
	mux.Handle(srv.cfg.Path+"/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test over")
		hs.Close()
	})

	c := newRawClient(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws/websocket")
	c.connect("")
	c.write("SUBSCRIBE\nid:p\ndestination:/user/session/message\nreceipt:s\n\n\x00")
	c.expect("RECEIPT")
	c.write("SEND\ndestination:/pub/notdone\nreceipt:lost\n\nx\x00")
	if m := c.expect("MESSAGE"); string(m.Body) != `{"eventName":"ERROR"}` {
		t.Fatalf("MESSAGE %q", m.Body)
	}
	c.write("BEGIN\ntransaction:t\n\n\x00")
	c.write("SEND\ndestination:/pub/notdone\ntransaction:t\n\nx\x00")
	c.write("COMMIT\ntransaction:t\nreceipt:lost-tx\n\n\x00")
	c.expect("MESSAGE")
	c.write("SEND\ndestination:/pub/handled\nreceipt:next\n\nx\x00")
	if r := c.expect("RECEIPT"); r.Header.Get("receipt-id") != "next" {
		t.Fatalf("receipt %q: a refused frame was acknowledged", r.Header.Get("receipt-id"))
	}
	if srv.Stats().Connections != 1 {
		t.Fatal("connection closed")
	}
}
