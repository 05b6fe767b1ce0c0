package store

import (
	rtmetrics "runtime/metrics"
	"testing"
)

// On MySQL a message context is read without a goroutine per query (which
// database/sql would start to close the rows of a cancellable query).
func TestMessageContextStartsNoGoroutine(t *testing.T) {
	s, e, f := mariaDBFixture(t)
	ctx := e.ctx
	appendOK(t, e, f.msg(f.customerSp, "안녕하세요"))
	if _, err := s.MessageContext(ctx, f.room.ID); err != nil { // the pool's connection is open
		t.Fatal(err)
	}
	created := func() uint64 {
		sample := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		rtmetrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	const reads = 50
	before := created()
	for range reads {
		mc, err := s.MessageContext(ctx, f.room.ID)
		must(t, err)
		if !mc.LastFound || !mc.LastIsCustomer {
			t.Fatalf("context %+v: want the customer's last message", mc)
		}
	}
	if n := created() - before; n >= reads/5 {
		t.Fatalf("%d context reads started %d goroutines", reads, n)
	}
}
