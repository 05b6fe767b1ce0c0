//go:build !linux

package broker

import "errors"

// readPoller is Linux's (poller_linux.go); elsewhere each raw WebSocket
// connection keeps a reader goroutine waiting for its bytes.
type readPoller struct{}

func newReadPoller() (*readPoller, error) {
	return nil, errors.New("broker: no epoll on this system")
}

func (p *readPoller) add(*wsTransport) error { return errors.New("broker: no epoll on this system") }
func (p *readPoller) remove(*wsTransport)    {}
func (p *readPoller) read(*wsTransport)      {}
func (p *readPoller) stop()                  {}
