package brokertest

import (
	"testing"
	"time"
)

// WaitFor polls cond every few milliseconds until it holds, and fails the test
// with what if it still does not after timeout. Tests use it instead of
// sleeping when the condition has no event to await.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("brokertest: %s: not true after %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
