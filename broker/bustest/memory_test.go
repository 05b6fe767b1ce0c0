package bustest_test

import (
	"testing"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/bustest"
)

// The in-process network stands in for Redis in single-binary clusters and
// tests, so it meets the same contract.
func TestMemoryNetwork(t *testing.T) {
	bustest.Run(t, func(t *testing.T, nodes int) []broker.Bus {
		network := broker.NewMemoryNetwork()
		buses := make([]broker.Bus, nodes)
		for i := range buses {
			bus := network.Node()
			t.Cleanup(func() { _ = bus.Close() })
			buses[i] = bus
		}
		return buses
	})
}
