package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// A minimal STOMP-over-WebSocket client for load generation. It reads and
// writes frames straight from reused buffers, so the generator spends its
// core on the wire rather than on allocations and leaves the server as the
// bottleneck being measured.

type dialOptions struct {
	url     string
	host    string            // CONNECT host header (RabbitMQ: the vhost)
	login   string            // empty: no login/passcode headers
	passcd  string            //
	headers map[string]string // extra CONNECT headers (chat customers, tokens)
}

type stompClient struct {
	ws   *websocket.Conn
	in   frameReader
	wbuf []byte
}

var errNotConnected = errors.New("server did not answer CONNECTED")

// dialSTOMP opens the raw WebSocket and completes CONNECT/CONNECTED with
// heart-beating off: a benchmark should measure messages, not timers.
func dialSTOMP(ctx context.Context, o dialOptions) (*stompClient, error) {
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		Subprotocols:     []string{"v12.stomp", "v11.stomp", "v10.stomp"},
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}
	ws, resp, err := d.DialContext(ctx, o.url, http.Header{})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.url, err)
	}
	c := &stompClient{ws: ws}
	c.in.ws = ws
	h := []string{"accept-version", "1.2,1.1,1.0", "host", o.host, "heart-beat", "0,0"}
	if o.login != "" {
		h = append(h, "login", o.login, "passcode", o.passcd)
	}
	for k, v := range o.headers {
		h = append(h, k, v)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(deadline)
	}
	if err := c.write("CONNECT", nil, h...); err != nil {
		c.close()
		return nil, err
	}
	f, err := c.in.next()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("read CONNECTED: %w", err)
	}
	if string(f.command) != "CONNECTED" {
		c.close()
		return nil, fmt.Errorf("%w: %s %s", errNotConnected, f.command, f.header("message"))
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

// write sends one frame as one text message; headers are key, value pairs.
func (c *stompClient) write(command string, body []byte, headers ...string) error {
	b := c.wbuf[:0]
	b = append(b, command...)
	b = append(b, '\n')
	for i := 0; i+1 < len(headers); i += 2 {
		b = append(b, headers[i]...)
		b = append(b, ':')
		b = append(b, headers[i+1]...)
		b = append(b, '\n')
	}
	if body != nil {
		b = append(b, "content-length:"...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, body...)
	b = append(b, 0)
	c.wbuf = b
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write %s: %w", command, err)
	}
	return nil
}

// subscribe sends SUBSCRIBE with a receipt and waits for the receipt.
func (c *stompClient) subscribe(id, destination string) error {
	receipt := "sub-" + id
	if err := c.write("SUBSCRIBE", nil, "id", id, "destination", destination, "ack", "auto", "receipt", receipt); err != nil {
		return err
	}
	return c.awaitReceipt(receipt)
}

func (c *stompClient) awaitReceipt(id string) error {
	_ = c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	for {
		f, err := c.in.next()
		if err != nil {
			return fmt.Errorf("await receipt %s: %w", id, err)
		}
		switch string(f.command) {
		case "RECEIPT":
			if f.header("receipt-id") == id {
				return nil
			}
		case "ERROR":
			return fmt.Errorf("await receipt %s: ERROR %s", id, f.header("message"))
		}
	}
}

func (c *stompClient) close() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// frameView points into the reader's buffer; valid until the next call to next.
type frameView struct {
	command []byte
	headers []byte // raw "key:value\n" lines
	body    []byte
}

func (f frameView) header(key string) string {
	h := f.headers
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > len(key) && line[len(key)] == ':' && string(line[:len(key)]) == key {
			return string(line[len(key)+1:])
		}
	}
	return ""
}

// frameReader parses frames from a stream of WebSocket messages: a frame may
// span messages, a message may hold several frames, heart-beat EOLs are skipped.
type frameReader struct {
	ws    *websocket.Conn
	buf   []byte
	start int
}

var errFrameTooLarge = errors.New("frame larger than 16 MiB")

func (r *frameReader) next() (frameView, error) {
	for {
		if f, n, ok := parseFrame(r.buf[r.start:]); ok {
			r.start += n
			return f, nil
		}
		if r.start > 0 {
			n := copy(r.buf, r.buf[r.start:])
			r.buf = r.buf[:n]
			r.start = 0
		}
		if len(r.buf) > 16<<20 {
			return frameView{}, errFrameTooLarge
		}
		_, msg, err := r.ws.NextReader()
		if err != nil {
			return frameView{}, err
		}
		for {
			if cap(r.buf)-len(r.buf) < 4096 {
				grown := make([]byte, len(r.buf), 2*cap(r.buf)+4096)
				copy(grown, r.buf)
				r.buf = grown
			}
			n, err := msg.Read(r.buf[len(r.buf):cap(r.buf)])
			r.buf = r.buf[:len(r.buf)+n]
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return frameView{}, err
			}
		}
	}
}

// parseFrame returns the first complete frame of b and the bytes it used.
func parseFrame(b []byte) (frameView, int, bool) {
	i := 0
	for i < len(b) && (b[i] == '\n' || b[i] == '\r') {
		i++ // heart-beats
	}
	if i == len(b) {
		return frameView{}, 0, false
	}
	eol := bytes.IndexByte(b[i:], '\n')
	if eol < 0 {
		return frameView{}, 0, false
	}
	f := frameView{command: bytes.TrimSuffix(b[i:i+eol], []byte("\r"))}
	hstart := i + eol + 1
	p := hstart
	for {
		e := bytes.IndexByte(b[p:], '\n')
		if e < 0 {
			return frameView{}, 0, false
		}
		line := b[p : p+e]
		p += e + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			break
		}
	}
	f.headers = b[hstart:p]
	if cl := f.header("content-length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			n = 0
		}
		if len(b) < p+n+1 {
			return frameView{}, 0, false
		}
		f.body = b[p : p+n]
		return f, p + n + 1, true
	}
	z := bytes.IndexByte(b[p:], 0)
	if z < 0 {
		return frameView{}, 0, false
	}
	f.body = b[p : p+z]
	return f, p + z + 1, true
}
