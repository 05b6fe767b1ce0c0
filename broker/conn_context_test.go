package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConnContextCancelsDerivedAndForgetsThem(t *testing.T) {
	ctx := newConnContext(context.Background())
	done, cancelDone := context.WithTimeout(ctx, time.Hour)
	defer cancelDone()
	finished, cancelFinished := context.WithTimeout(ctx, time.Hour)
	if n := len(ctx.afters); n != 2 {
		t.Fatalf("derived contexts registered: %d, want 2", n)
	}
	cancelFinished()
	if err := finished.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled derived context: %v", err)
	}
	if n := len(ctx.afters); n != 1 {
		t.Fatalf("registrations after one derived context ended: %d, want 1", n)
	}
	ctx.cancel(nil)
	<-done.Done()
	<-ctx.Done()
	if !errors.Is(done.Err(), context.Canceled) || !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("after cancel: derived %v, connection %v", done.Err(), ctx.Err())
	}
	if ctx.afters != nil {
		t.Fatalf("registrations kept after cancel: %d", len(ctx.afters))
	}
	late, cancelLate := context.WithCancel(ctx)
	defer cancelLate()
	<-late.Done()
}

func TestConnContextEndsWithItsParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), t, "value"))
	ctx := newConnContext(parent)
	stop := ctx.watchParent()
	defer stop()
	if ctx.Value(t) != "value" {
		t.Fatalf("the parent's value is not seen")
	}
	derived, cancelDerived := context.WithCancel(ctx)
	defer cancelDerived()
	cancelParent()
	<-derived.Done()
	<-ctx.Done()
	if ctx.afters != nil {
		t.Fatalf("registrations kept after the parent ended: %d", len(ctx.afters))
	}
}
