package knowledgetalk_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRequestRightAfterJoin: a request that follows the namespace join at
// once is answered, on either Engine.IO generation, however the join and
// the reader interleave. Each client sends its join and its first
// KeepAlive back to back, which makes the interleaving that once dropped
// a few connections in a hundred (see joinGate) the common case.
func TestRequestRightAfterJoin(t *testing.T) {
	h := start(t, nil)
	url := "ws" + strings.TrimPrefix(h.http.URL, "http") + "/socket.io/?transport=websocket&EIO="
	dropped := 0
	for i := range 200 {
		for _, eio := range []string{"3", "4"} {
			if err := joinAndKeepAlive(url + eio); err != nil {
				if dropped++; dropped <= 5 {
					t.Errorf("socket %d, EIO %s: %v", i, eio, err)
				}
			}
		}
	}
	if dropped > 0 {
		t.Fatalf("%d of 400 sockets dropped", dropped)
	}
}

// joinAndKeepAlive opens a raw Engine.IO websocket, joins /SignalServer and
// sends a KeepAlive without waiting for the join's answer, then reads both
// answers.
func joinAndKeepAlive(url string) error {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	// read returns the next frame but the root namespace's "40" that
	// Engine.IO 3 connections get unasked.
	read := func(what string) (string, error) {
		for {
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, p, err := ws.ReadMessage()
			if err != nil {
				return "", fmt.Errorf("%s: %w", what, err)
			}
			if string(p) != "40" {
				return string(p), nil
			}
		}
	}
	if open, err := read("open"); err != nil {
		return err
	} else if !strings.HasPrefix(open, "0{") {
		return fmt.Errorf("open %q", open)
	}
	for _, frame := range []string{"40/SignalServer,", `42/SignalServer,["knowledgetalk",{"eventOp":"KeepAlive"}]`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			return fmt.Errorf("write %q: %w", frame, err)
		}
	}
	if joined, err := read("join"); err != nil {
		return err
	} else if !strings.HasPrefix(joined, "40/SignalServer") {
		return fmt.Errorf("join answer %q", joined)
	}
	if ka, err := read("KeepAlive"); err != nil {
		return err
	} else if !strings.Contains(ka, `"eventOp":"KeepAlive"`) || !strings.Contains(ka, `"code":"200"`) {
		return fmt.Errorf("KeepAlive answer %q", ka)
	}
	return nil
}
