package broker

import "testing"

// The application hears of a SUBSCRIBE outside the broker's prefixes too, so
// it can report the refusal its own way and keep the connection; when it
// lets one through, the broker still refuses it.
func TestUnknownDestinationAskedOfTheApplication(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("")
	c.write("SUBSCRIBE\nid:p\ndestination:/user/session/message\n\n\x00")
	c.write("SUBSCRIBE\nid:h\ndestination:/topic/handled\nreceipt:r1\n\n\x00")
	if m := c.expect("MESSAGE"); string(m.Body) != `{"eventName":"ERROR"}` || m.Header.Get("subscription") != "p" {
		t.Fatalf("MESSAGE %s %q", headerString(m.Header), m.Body)
	}
	c.expect("RECEIPT")
	if s.Server.HasSubscribers("topic/handled") || s.Stats().Connections != 1 {
		t.Fatal("refused subscription active, or the connection closed")
	}
	c.write("SUBSCRIBE\nid:q\ndestination:/topic/allowed\n\n\x00")
	if f := c.expect("ERROR"); f.Header.Get("message") != "unknown destination" {
		t.Fatalf("ERROR %s %q", headerString(f.Header), f.Body)
	}
	c.expectClosed()
}
