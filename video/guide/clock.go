package guide

import "time"

// Timer is a pending call of AfterFunc.
type Timer interface {
	// Stop cancels the call; false when it already ran or was stopped.
	Stop() bool
}

// AfterFunc calls f in its own goroutine after d; tests substitute a clock
// they advance by hand.
type AfterFunc func(d time.Duration, f func()) Timer

func realAfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
