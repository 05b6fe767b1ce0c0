package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cstalk/cstalk/chat"
)

// BenchmarkAppendMessage measures stored messages per second with many
// concurrent writers (as many rooms' senders would be), through group
// commit. Run: go test ./store -run '^$' -bench AppendMessage -benchtime 20000x
func BenchmarkAppendMessage(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.open(b)
			ctx := context.Background()
			const rooms = 64
			co := &chat.Company{Name: "bench"}
			if err := s.SaveCompany(ctx, co); err != nil {
				b.Fatal(err)
			}
			type target struct{ room, speaker int64 }
			targets := make([]target, rooms)
			for i := range targets {
				c, err := s.EnsureCustomer(ctx, co.ID, fmt.Sprint(i), "고객")
				if err != nil {
					b.Fatal(err)
				}
				sp, err := s.CustomerSpeaker(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				r, _, err := s.OpenRoom(ctx, c, t0)
				if err != nil {
					b.Fatal(err)
				}
				targets[i] = target{r.ID, sp.ID}
			}
			var seq atomic.Int64
			b.SetParallelism(128) // GOMAXPROCS x 128 writers
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					tg := targets[n%rooms]
					m := &chat.Message{
						RoomID: tg.room, SpeakerID: tg.speaker, SpeakerName: "고객",
						Body: "가스 점검 일정 문의드립니다 😀", ClientMessageID: fmt.Sprint("b-", n),
					}
					if _, _, err := s.AppendMessage(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
