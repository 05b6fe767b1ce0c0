package broker

import (
	"context"
	"errors"
	"sync"
)

// MemoryNetwork connects in-process buses as if they were nodes of a
// cluster: what one node publishes reaches every other node subscribed to
// the topic, in publish order. A single node (NewMemoryBus) is the bus of a
// one-node deployment; several nodes let tests run a cluster without Redis.
type MemoryNetwork struct {
	mu    sync.RWMutex
	nodes []*MemoryBus
}

// NewMemoryNetwork returns an empty network; Node adds a node to it.
func NewMemoryNetwork() *MemoryNetwork { return &MemoryNetwork{} }

// Node adds a node to the network and returns its bus.
func (n *MemoryNetwork) Node() *MemoryBus {
	b := &MemoryBus{net: n, topics: make(map[string]bool), wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.mu.Lock()
	n.nodes = append(n.nodes, b)
	n.mu.Unlock()
	return b
}

// NewMemoryBus returns the bus of a single node: nothing to carry between
// nodes, so Publish is free.
func NewMemoryBus() Bus { return NewMemoryNetwork().Node() }

// memoryInbox bounds what a node that is not running may hold.
const memoryInbox = 1 << 16

// ErrBusClosed is returned by a closed bus.
var ErrBusClosed = errors.New("broker: bus closed")

type busMessage struct {
	topic   string
	payload []byte
}

// MemoryBus is one node of a MemoryNetwork.
type MemoryBus struct {
	net *MemoryNetwork

	mu     sync.Mutex
	topics map[string]bool
	inbox  []busMessage
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

var _ Bus = (*MemoryBus)(nil)

func (b *MemoryBus) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.net.mu.RLock()
	defer b.net.mu.RUnlock()
	var err error
	for _, node := range b.net.nodes {
		if node != b {
			if e := node.receive(topic, payload); e != nil && err == nil {
				err = e
			}
		}
	}
	return err
}

func (b *MemoryBus) receive(topic string, payload []byte) error {
	b.mu.Lock()
	if b.closed || !b.topics[topic] {
		b.mu.Unlock()
		return nil
	}
	if len(b.inbox) >= memoryInbox {
		b.mu.Unlock()
		return errors.New("broker: memory bus inbox full")
	}
	b.inbox = append(b.inbox, busMessage{topic: topic, payload: append([]byte(nil), payload...)})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

func (b *MemoryBus) Subscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBusClosed
	}
	b.topics[topic] = true
	return nil
}

func (b *MemoryBus) Unsubscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.topics, topic)
	return nil
}

// Subscribed reports whether the node holds a subscription to topic.
func (b *MemoryBus) Subscribed(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.topics[topic]
}

func (b *MemoryBus) Run(ctx context.Context, deliver func(topic string, payload []byte)) error {
	for {
		b.mu.Lock()
		batch := b.inbox
		b.inbox = nil
		b.mu.Unlock()
		for _, m := range batch {
			deliver(m.topic, m.payload)
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.done:
			return ErrBusClosed
		case <-b.wake:
		}
	}
}

func (b *MemoryBus) Ready(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBusClosed
	}
	return nil
}

func (b *MemoryBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.inbox = nil
		close(b.done)
	}
	return nil
}
