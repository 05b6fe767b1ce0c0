package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clientFrame is a masked client frame (RFC 6455 5.2).
func clientFrame(first byte, payload []byte) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b := []byte{first}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// The payload of data frames comes out as one stream wherever the reads
// split the frames: fragments, a ping between two of them (answered with a
// pong carrying its payload), empty frames, and every length class.
func TestDecodeFramesSplitAnywhere(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 7000)
	var stream, want []byte
	add := func(first byte, p []byte) {
		stream = append(stream, clientFrame(first, p)...)
		if first&0x0F < opClose {
			want = append(want, p...)
		}
	}
	add(opText, []byte("CONNECT\naccept"))    // FIN clear: fragments follow
	add(0x80|opPing, []byte("are you there")) // between fragments
	add(opContinuation, nil)
	add(0x80|opContinuation, []byte("-version:1.2\n\n\x00"))
	add(0x80|opText, nil)
	add(0x80|opPong, []byte("unasked"))
	add(0x80|opBinary, bytes.Repeat([]byte{0xff}, 126))
	add(0x80|opText, big)
	add(0x80|opText, []byte("SEND\n\n\x00"))

	for _, split := range []int{1, 2, 3, 7, 13, 100, 4096, len(stream)} {
		server, client := net.Pipe()
		pongs := make(chan []byte, 1)
		go func() {
			var b [64]byte
			n, _ := client.Read(b[:])
			pongs <- append([]byte(nil), b[:n]...)
			_ = client.Close()
		}()
		tr := &wsTransport{nc: server, writeTimeout: time.Second}
		var got []byte
		for rest := stream; len(rest) > 0; {
			piece := append([]byte(nil), rest[:min(split, len(rest))]...)
			rest = rest[len(piece):]
			data, err := tr.decode(piece)
			if err != nil {
				t.Fatalf("split %d: %v", split, err)
			}
			got = append(got, data...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("split %d: got %d bytes %.60q, want %d bytes %.60q", split, len(got), got, len(want), want)
		}
		if p := <-pongs; !bytes.Equal(p, append([]byte{0x80 | opPong, 13}, "are you there"...)) {
			t.Fatalf("split %d: pong %q", split, p)
		}
		_ = server.Close()
	}
}

// rawWSConn opens a raw WebSocket to s and returns gorilla's client with
// its socket, on which the test writes frames of its own.
func rawWSConn(t *testing.T, s *testServer) (*websocket.Conn, net.Conn) {
	t.Helper()
	ws := dialWS(t, s.wsURL("/ws/websocket")).ws
	return ws, ws.NetConn()
}

// A fragmented CONNECT with a ping between its fragments is answered with
// the pong, then CONNECTED; the client's close is answered with its code.
func TestRawWebSocketFragmentsPingAndClose(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	ws, nc := rawWSConn(t, s)
	pong := make(chan string, 1)
	ws.SetPongHandler(func(p string) error { pong <- p; return nil })
	var out []byte
	out = append(out, clientFrame(opText, []byte("CONNECT\naccept-version:1.2\n"))...)
	out = append(out, clientFrame(0x80|opPing, []byte("ping 1"))...)
	out = append(out, clientFrame(0x80|opContinuation, []byte("host:test\n\n\x00"))...)
	for _, b := range out { // one byte per write: frames and headers cut anywhere
		if _, err := nc.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.HasPrefix(string(msg), "CONNECTED\n") {
		t.Fatalf("got %q, %v; want CONNECTED", msg, err)
	}
	if p := <-pong; p != "ping 1" {
		t.Fatalf("pong %q", p)
	}
	if _, err := nc.Write(clientFrame(0x80|opClose, websocket.FormatCloseMessage(4001, "bye"))); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, 4001) {
		t.Fatalf("got %v, want the close echoed with 4001", err)
	}
	waitFor(t, "the connection to end", func() bool { return s.Stats().Connections == 0 })
}

// A frame the protocol forbids (a client frame without a mask) ends the
// connection with close code 1002.
func TestRawWebSocketProtocolError(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	ws, nc := rawWSConn(t, s)
	if _, err := nc.Write([]byte{0x80 | opText, 3, 'a', 'b', 'c'}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError || !strings.Contains(ce.Text, "not masked") {
		t.Fatalf("got %v, want close 1002", err)
	}
	waitFor(t, "the connection to end", func() bool { return s.Stats().Connections == 0 })
}
