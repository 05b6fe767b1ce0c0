package broker

import (
	"context"
	"slices"
	"sync"
	"time"
)

// connContext is a connection's context. A context.WithCancel context would
// keep, for the connection's whole life, the children map that the first
// context derived from it creates (every store call derives a timeout); the
// context package instead hands a parent with an AfterFunc method the
// child's cancel, so a derived context costs an entry in afters only while
// it lives.
type connContext struct {
	parent context.Context

	mu     sync.Mutex
	done   chan struct{} // made on first use
	err    error
	afters []*afterCancel // nil while empty, so an idle connection keeps none
}

type afterCancel struct{ f func() }

func newConnContext(parent context.Context) *connContext {
	return &connContext{parent: parent}
}

// watchParent cancels ctx when its parent ends; stop undoes that. It is
// nil when the parent never ends.
func (ctx *connContext) watchParent() (stop func() bool) {
	if ctx.parent.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx.parent, func() { ctx.cancel(ctx.parent.Err()) })
}

func (ctx *connContext) Deadline() (time.Time, bool) { return ctx.parent.Deadline() }
func (ctx *connContext) Value(key any) any           { return ctx.parent.Value(key) }

func (ctx *connContext) Done() <-chan struct{} {
	ctx.mu.Lock()
	defer ctx.mu.Unlock()
	if ctx.done == nil {
		ctx.done = make(chan struct{})
		if ctx.err != nil {
			close(ctx.done)
		}
	}
	return ctx.done
}

func (ctx *connContext) Err() error {
	ctx.mu.Lock()
	defer ctx.mu.Unlock()
	return ctx.err
}

// AfterFunc arranges for f to run when ctx ends; the context package calls
// it with a derived context's cancel. f runs on the goroutine that cancels
// ctx, or in a goroutine of its own when ctx has already ended (the caller
// may hold a lock f takes).
func (ctx *connContext) AfterFunc(f func()) (stop func() bool) {
	ctx.mu.Lock()
	if ctx.err != nil {
		ctx.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterCancel{f: f}
	ctx.afters = append(ctx.afters, a)
	ctx.mu.Unlock()
	return func() bool {
		ctx.mu.Lock()
		defer ctx.mu.Unlock()
		i := slices.Index(ctx.afters, a)
		if i < 0 {
			return false
		}
		last := len(ctx.afters) - 1
		ctx.afters[i] = ctx.afters[last]
		ctx.afters[last] = nil
		ctx.afters = ctx.afters[:last]
		if last == 0 {
			ctx.afters = nil
		}
		return true
	}
}

// cancel ends ctx with err (context.Canceled when nil) and runs what
// AfterFunc registered.
func (ctx *connContext) cancel(err error) {
	if err == nil {
		err = context.Canceled
	}
	ctx.mu.Lock()
	if ctx.err != nil {
		ctx.mu.Unlock()
		return
	}
	ctx.err = err
	if ctx.done != nil {
		close(ctx.done)
	}
	afters := ctx.afters
	ctx.afters = nil
	ctx.mu.Unlock()
	for _, a := range afters {
		a.f()
	}
}
