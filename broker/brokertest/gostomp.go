package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
)

// StompSubprotocols are offered on the WebSocket handshake, as browsers'
// STOMP clients do.
var stompSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// DialWebSocket opens the raw WebSocket endpoint (e.g.
// ws://127.0.0.1:PORT/ws/websocket) and returns it as a byte stream: reads
// run across WebSocket messages, so a STOMP frame may span several messages
// and one message may hold several frames; writes are gathered into one text
// message per STOMP frame (or heart-beat).
func DialWebSocket(ctx context.Context, wsURL string, header http.Header) (io.ReadWriteCloser, error) {
	dialer := websocket.Dialer{HandshakeTimeout: DefaultTimeout, Subprotocols: stompSubprotocols}
	conn, resp, err := dialer.DialContext(ctx, wsURL, header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("brokertest: dial %s: %w", wsURL, err)
	}
	return &wsStream{conn: conn}, nil
}

// DialGo connects go-stomp to the raw WebSocket endpoint. opts are go-stomp
// connection options (stomp.ConnOpt...). The CONNECT host header defaults to
// "/", which RabbitMQ reads as its default virtual host.
func DialGo(ctx context.Context, wsURL string, opts ...func(*stomp.Conn) error) (*stomp.Conn, error) {
	stream, err := DialWebSocket(ctx, wsURL, nil)
	if err != nil {
		return nil, err
	}
	defaults := []func(*stomp.Conn) error{stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietLogger{})}
	opts = append(defaults, opts...)
	conn, err := stomp.ConnectWithContext(ctx, stream, opts...)
	if err != nil {
		_ = stream.Close()
		return nil, fmt.Errorf("brokertest: stomp connect %s: %w", wsURL, err)
	}
	return conn, nil
}

// ConnectGo is DialGo for tests: it fails the test on error and disconnects
// when the test ends.
func ConnectGo(t testing.TB, wsURL string, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	conn, err := DialGo(ctx, wsURL, opts...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = conn.MustDisconnect() })
	return conn
}

// wsStream adapts a gorilla WebSocket to io.ReadWriteCloser for go-stomp,
// which runs one reader and one writer goroutine.
type wsStream struct {
	conn *websocket.Conn

	reader io.Reader // the message being read; nil between messages

	wmu     sync.Mutex
	pending bytes.Buffer // written bytes not yet sent as a message

	closeOnce sync.Once
	closeErr  error
}

// maxPendingWrite bounds the bytes gathered before a message is sent even
// though no frame end was seen (a body containing NUL bytes, for instance).
const maxPendingWrite = 1 << 20

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.reader == nil {
			_, r, err := s.conn.NextReader()
			if err != nil {
				var closeErr *websocket.CloseError
				if errors.As(err, &closeErr) {
					return 0, io.EOF
				}
				return 0, err
			}
			s.reader = r
		}
		n, err := s.reader.Read(p)
		if errors.Is(err, io.EOF) {
			s.reader = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write gathers bytes until they end a frame (NUL) or are a lone heart-beat
// EOL, then sends them as one text message. go-stomp writes a frame through a
// bufio.Writer, so a frame arrives here as one or several Writes.
func (s *wsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.pending.Write(p)
	b := s.pending.Bytes()
	frameEnd := len(b) > 0 && b[len(b)-1] == 0
	heartbeat := len(bytes.Trim(b, "\r\n")) == 0
	if !frameEnd && !heartbeat && len(b) < maxPendingWrite {
		return len(p), nil
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	err := s.conn.WriteMessage(websocket.TextMessage, b)
	s.pending.Reset()
	if err != nil {
		return 0, fmt.Errorf("brokertest: websocket write: %w", err)
	}
	return len(p), nil
}

func (s *wsStream) Close() error {
	s.closeOnce.Do(func() {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		s.closeErr = s.conn.Close()
	})
	return s.closeErr
}

// SubscribeGo subscribes conn to destination and returns once the
// subscription is active. go-stomp cannot await a SUBSCRIBE receipt, so it
// sends a probe message to destination and waits for it to come back: call it
// before other clients subscribe to destination, or they see the probe too.
// The broker must let conn SEND to destination.
func SubscribeGo(t testing.TB, conn *stomp.Conn, destination string) *stomp.Subscription {
	t.Helper()
	sub, err := conn.Subscribe(destination, stomp.AckAuto)
	if err != nil {
		t.Fatalf("brokertest: go-stomp subscribe %s: %v", destination, err)
	}
	probe := fmt.Sprintf("brokertest-probe-%d", time.Now().UnixNano())
	if err := conn.Send(destination, "text/plain", []byte(probe), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("brokertest: go-stomp probe %s: %v", destination, err)
	}
	msg, err := NextGoMessage(sub, DefaultTimeout)
	if err != nil {
		t.Fatalf("brokertest: go-stomp probe %s: %v", destination, err)
	}
	if string(msg.Body) != probe {
		t.Fatalf("brokertest: go-stomp subscribe %s: got %q before the probe", destination, msg.Body)
	}
	return sub
}

// NextGoMessage waits up to timeout for the next message on sub.
func NextGoMessage(sub *stomp.Subscription, timeout time.Duration) (*stomp.Message, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case msg, ok := <-sub.C:
		if !ok {
			return nil, fmt.Errorf("brokertest: subscription %s closed", sub.Destination())
		}
		if msg.Err != nil {
			return nil, fmt.Errorf("brokertest: subscription %s: %w", sub.Destination(), msg.Err)
		}
		return msg, nil
	case <-timer.C:
		return nil, fmt.Errorf("brokertest: no message on %s within %v", sub.Destination(), timeout)
	}
}

// quietLogger keeps go-stomp's chatter about subscriptions ended by a
// disconnect out of test output, and passes its warnings and errors to slog.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Info(string)           {}
func (quietLogger) Warningf(format string, v ...any) {
	quietLogger{}.Warning(fmt.Sprintf(format, v...))
}
func (quietLogger) Errorf(format string, v ...any) { quietLogger{}.Error(fmt.Sprintf(format, v...)) }
func (quietLogger) Warning(msg string) {
	slog.Warn(msg, "component", "brokertest", "client", "go-stomp")
}
func (quietLogger) Error(msg string) {
	slog.Error(msg, "component", "brokertest", "client", "go-stomp")
}
