package broker

import (
	"context"
	"errors"
	"fmt"
)

// Application is what a domain plugs into the broker. The broker calls it from
// the connection's reader goroutine, so a slow hook slows only that connection.
// Destinations passed to hooks are normalized: no leading slash.
type Application interface {
	// Authenticate checks a CONNECT (or STOMP) frame's headers and returns the
	// principal the connection acts as. An error refuses the connection: the
	// client gets an ERROR frame whose message is the error text, then close.
	Authenticate(ctx context.Context, c *Conn, connect Header) (principal any, err error)

	// AuthorizeSubscribe decides whether c may subscribe to destination.
	// It is asked about every destination, also one outside the broker's
	// prefixes, which the broker refuses ("unknown destination") when the
	// application lets it through. A non-nil error refuses the subscription. If the error wraps ErrHandled the
	// application has already told the client (e.g. an ERROR event on its private
	// destination) and the connection stays open; any other error is sent as an
	// ERROR frame and the connection closes.
	AuthorizeSubscribe(ctx context.Context, c *Conn, destination string, headers Header) error

	// HandleSend receives every SEND to an application destination (see
	// Config.AppPrefixes). It runs before the receipt is written, so a receipt
	// means the handler has finished (e.g. the message is stored). Error
	// semantics as for AuthorizeSubscribe.
	HandleSend(ctx context.Context, c *Conn, destination string, headers Header, body []byte) error

	// AuthorizeSend decides whether c may SEND straight to a broker destination
	// (see Config.BrokerPrefixes), which would reach its subscribers unchanged.
	AuthorizeSend(ctx context.Context, c *Conn, destination string, headers Header) error

	// Subscribed is called after a subscription is active, so events the
	// application sends from here are delivered to it.
	Subscribed(ctx context.Context, c *Conn, destination string, headers Header)

	// Unsubscribed is called after UNSUBSCRIBE, and for every remaining
	// subscription when the connection ends (before Disconnected).
	Unsubscribed(ctx context.Context, c *Conn, destination string)

	// Disconnected is called once when an authenticated connection ends.
	Disconnected(ctx context.Context, c *Conn)
}

// ErrHandled marks a refusal the application already reported to the client.
var ErrHandled = errors.New("broker: refusal already reported to the client")

// ErrNotDone marks a handled refusal (it wraps ErrHandled) of a SEND that
// did not take effect, e.g. a message that could not be stored. The
// connection stays open as with ErrHandled, but no RECEIPT is written for
// the frame (nor for the COMMIT that replays it): a receipt tells the client
// its message is safe, and it must never say so for a message that is not.
var ErrNotDone = fmt.Errorf("%w (the frame took no effect)", ErrHandled)
