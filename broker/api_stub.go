package broker

// TEMPORARY: the exported surface other packages compile against while the
// broker is being written. The broker work replaces this file; the names and
// signatures below must keep working.

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Header is the read side of a frame's headers.
type Header interface {
	Get(key string) string
	Contains(key string) (string, bool)
}

// Conn is one STOMP connection, whatever transport carries it.
type Conn struct{}

func (c *Conn) ID() string                    { panic("stub") } // STOMP session id (unique per node and cluster)
func (c *Conn) Principal() any                { panic("stub") } // what Authenticate returned
func (c *Conn) Transport() string             { panic("stub") } // "websocket", "xhr-streaming", "raw-websocket", ...
func (c *Conn) Context() context.Context      { panic("stub") } // ends when the connection ends
func (c *Conn) RemoteAddr() string            { panic("stub") }
func (c *Conn) Close(reason string)           { panic("stub") } // ERROR frame with reason, then close
func (c *Conn) HasSubscription(dest string) bool { panic("stub") }

type Config struct {
	Path               string        // "/ws"
	PrivateDestination string        // "user/session/message"
	AppPrefixes        []string      // {"pub/"}
	BrokerPrefixes     []string      // {"sub/"}
	ContentType        string        // of MESSAGE frames: "application/json;charset=UTF-8"
	MaxFrameSize       int           // bytes, headers + body
	MaxHeaders         int           // per frame
	MaxHeaderLine      int           // bytes per header line
	MaxSubscriptions   int           // per connection
	ConnectTimeout     time.Duration // a connection silent without CONNECT is closed
	HeartbeatSend      time.Duration // the server's offer cx
	HeartbeatRecv      time.Duration // the server's offer cy
	OutboundQueue      int           // frames queued per connection before it is "slow"
	WriteTimeout       time.Duration
}

func DefaultConfig() Config { panic("stub") }

type Server struct{}

func New(cfg Config, app Application, bus Bus, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	panic("stub")
}
func (s *Server) Handler() http.Handler { panic("stub") } // serves cfg.Path and everything below it
// Publish delivers body to every subscriber of destination on every node.
func (s *Server) Publish(ctx context.Context, destination string, body []byte) error { panic("stub") }
// SendPrivate delivers body to the private destination of session sessionID, on whichever node holds it.
func (s *Server) SendPrivate(ctx context.Context, sessionID string, body []byte) error { panic("stub") }
// Shutdown stops accepting, tells every client reason in an ERROR frame, and closes.
func (s *Server) Shutdown(ctx context.Context, reason string) error { panic("stub") }

func NewMemoryBus() Bus { panic("stub") }
