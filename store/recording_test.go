package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/video/recording"
)

// Recordings and a company's choice to record, on every backend: rows
// scoped by company, files in order, the end written once, and the
// record_calls column's three states.
func TestRecordingStore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, _ := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			co := &chat.Company{Name: "녹화 회사"}
			if err := s.SaveCompany(ctx, co); err != nil {
				t.Fatal(err)
			}
			// NULL (the server's default), then each choice, then NULL again.
			yes, no := true, false
			for _, want := range []*bool{nil, &yes, &no, nil} {
				if want != nil || co.RecordCalls != nil {
					if err := s.SetRecordCalls(ctx, co.ID, want); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.Company(ctx, co.ID)
				if err != nil {
					t.Fatal(err)
				}
				if (got.RecordCalls == nil) != (want == nil) || (want != nil && *got.RecordCalls != *want) {
					t.Fatalf("record_calls %v, want %v", got.RecordCalls, want)
				}
				co.RecordCalls = want
			}
			if err := s.SetRecordCalls(ctx, 1<<40, &yes); !errors.Is(err, chat.ErrNotFound) {
				t.Fatalf("a missing company: %v", err)
			}

			room := int64(42)
			r1 := &recording.Recording{CompanyID: co.ID, VideoRoomID: "r-42", ChatRoomID: &room, StartedAt: t0}
			r2 := &recording.Recording{CompanyID: co.ID + 1, VideoRoomID: "r-43", StartedAt: t0}
			for _, r := range []*recording.Recording{r1, r2} {
				if err := s.CreateRecording(ctx, r); err != nil || r.ID == 0 {
					t.Fatalf("create: %v (id %d)", err, r.ID)
				}
			}
			f := &recording.File{RecordingID: r1.ID, UserID: "7", Name: "김고객", Customer: true, StartedAt: t0, Status: recording.StatusRecording}
			if err := s.CreateRecordingFile(ctx, f); err != nil {
				t.Fatal(err)
			}
			end := t0.Add(90 * time.Second)
			f.Path, f.EndedAt, f.Bytes, f.Duration, f.Status = "c1/1/1.webm", &end, 12345, 89500*time.Millisecond, recording.StatusDone
			if err := s.FinishRecordingFile(ctx, f); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishRecording(ctx, r1.ID, end); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishRecording(ctx, 1<<40, end); !errors.Is(err, recording.ErrNotFound) {
				t.Fatalf("finish a missing recording: %v", err)
			}
			got, err := s.Recording(ctx, co.ID, r1.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ChatRoomID == nil || *got.ChatRoomID != 42 || got.EndedAt == nil || !got.EndedAt.Equal(end) || len(got.Files) != 1 {
				t.Fatalf("recording %+v", got)
			}
			if g := got.Files[0]; g.Name != "김고객" || !g.Customer || g.Path != f.Path || g.Bytes != 12345 ||
				g.Duration != f.Duration || g.Status != recording.StatusDone || !g.StartedAt.Equal(t0) {
				t.Fatalf("file %+v", g)
			}
			// Another company's recording is not found, nor listed.
			if _, err := s.Recording(ctx, co.ID, r2.ID); !errors.Is(err, recording.ErrNotFound) {
				t.Fatalf("another company's recording: %v", err)
			}
			list, err := s.Recordings(ctx, co.ID, 0, 10)
			if err != nil || len(list) != 1 || list[0].ID != r1.ID {
				t.Fatalf("list %+v %v", list, err)
			}
			if list, err = s.Recordings(ctx, co.ID, r1.ID, 10); err != nil || len(list) != 0 {
				t.Fatalf("list before the first %+v %v", list, err)
			}
		})
	}
}
