package store

import (
	"sync"
	"time"
)

// deadlineClock wakes the callers waiting on the writer once the earliest
// of their deadlines has passed. One timer serves all of them: a
// context.WithTimeout per append cost a timer and a registration on the
// caller's context for every message. Callers whose deadline has not come
// yet wake with the others and wait again.
type deadlineClock struct {
	mu       sync.Mutex
	fired    chan struct{} // closed at earliest; nil while nobody waits
	earliest time.Time
	moved    chan struct{} // earliest came closer; buffered (1)
}

func newDeadlineClock() *deadlineClock {
	return &deadlineClock{moved: make(chan struct{}, 1)}
}

// at returns a channel closed at deadline or earlier: the caller checks
// the time when it is closed.
func (c *deadlineClock) at(deadline time.Time) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fired != nil && !deadline.Before(c.earliest) {
		return c.fired
	}
	if c.fired == nil {
		c.fired = make(chan struct{})
	}
	c.earliest = deadline
	select {
	case c.moved <- struct{}{}:
	default:
	}
	return c.fired
}

// run keeps the timer on the earliest deadline until done is closed.
func (c *deadlineClock) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-c.moved:
			c.mu.Lock()
			timer.Reset(time.Until(c.earliest))
			c.mu.Unlock()
		case <-timer.C:
			c.mu.Lock()
			if c.fired != nil {
				close(c.fired)
				c.fired = nil
			}
			c.mu.Unlock()
		case <-done:
			return
		}
	}
}
