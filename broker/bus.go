package broker

import "context"

// Bus carries published messages between the nodes of a cluster. The node that
// publishes delivers to its own subscribers itself, without waiting for the
// bus; a Bus delivers only what other nodes published.
//
// The hub calls Subscribe for the first local subscriber of a topic and
// Unsubscribe after the last, so an implementation holds one upstream
// subscription per topic per node, never one per connection.
type Bus interface {
	// Publish sends payload on topic to the other nodes subscribed to it.
	Publish(ctx context.Context, topic string, payload []byte) error
	Subscribe(ctx context.Context, topic string) error
	Unsubscribe(ctx context.Context, topic string) error
	// Run hands deliver every message other nodes publish on a subscribed
	// topic, in publish order per topic, until ctx ends or the bus is closed.
	Run(ctx context.Context, deliver func(topic string, payload []byte)) error
	// Ready reports whether the bus can currently carry messages (for /readyz).
	Ready(ctx context.Context) error
	Close() error
}
