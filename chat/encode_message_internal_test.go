package chat

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand-written MESSAGE encoder must give the bytes the reflective
// encoder gave for the map the events were built with before: same keys,
// order, omissions and escapes.
func checkMessageEvent(t *testing.T, env Envelope, p MessagePayload) {
	t.Helper()
	env.Data = map[string]any{"message": p}
	want, err := json.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	env.Data = newMessageData(p)
	viaStruct, err := json.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaStruct, want) {
		t.Fatalf("messageData encodes unlike the map:\n got %s\nwant %s", viaStruct, want)
	}
	got, err := (&Service{}).marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MESSAGE event:\n got %s\nwant %s", got, want)
	}
}

func TestMessageEventEncoding(t *testing.T) {
	room := "12"
	full := MessagePayload{
		ID: 901, JoinMessageID: 0, CreateDate: "2026-12-04 16:30:01", UpdateDate: "2026-12-04 16:30:02",
		SpeakerID: -3, SpeakerName: "김상담", RoomID: 12, RoomName: "고객 <1> & \"2\"", CompanyID: "7",
		MessageType: 1, NoReadCount: 2, IsSystemMessage: 1, Message: "안녕하세요\n\t\\ \b\f\r\x00\x1f\x7f",
		MessageAdminType: 1, IsEmployee: 1, IsCustomer: 0, IsOnline: 1, MessageDetail: "/files/a.png",
		Thumbnail: "/files/a_t.png", IsDeleted: 1, ClientMessageID: "c-1\u2028\u2029",
	}
	for name, c := range map[string]struct {
		env Envelope
		p   MessagePayload
	}{
		"every field": {Envelope{EventName: EventMessage, CompanyID: "7", RoomID: &room, Target: TargetBroadcast, SessionID: "s<1>"}, full},
		"omitted":     {Envelope{EventName: EventMessage, CompanyID: "7"}, MessagePayload{Message: "hi"}},
		"invalid utf-8": {Envelope{EventName: EventMessage, CompanyID: "7", RoomID: &room, Target: TargetSelf},
			MessagePayload{Message: "a\xffb\xc3", SpeakerName: "\xe2\x80", ClientMessageID: "\xed\xa0\x80"}},
		"html": {Envelope{EventName: EventMessage, CompanyID: "7", RoomID: &room, Target: TargetMember},
			MessagePayload{Message: "<script>alert('&')</script>", MessageDetail: "a>b"}},
	} {
		t.Run(name, func(t *testing.T) { checkMessageEvent(t, c.env, c.p) })
	}
}

func FuzzMessageEventEncoding(f *testing.F) {
	f.Add("안녕하세요", "김상담", "s1", int64(5))
	f.Add("<&>\"\\\u2028\x01", "\xff", "", int64(-1))
	f.Add("", "", "session\n", int64(0))
	f.Fuzz(func(t *testing.T, msg, name, session string, id int64) {
		room := "3"
		checkMessageEvent(t,
			Envelope{EventName: EventMessage, CompanyID: name, RoomID: &room, Target: TargetBroadcast, SessionID: session},
			MessagePayload{ID: id, SpeakerName: name, Message: msg, MessageDetail: session, Thumbnail: msg, ClientMessageID: name, NoReadCount: int(id)})
	})
}

func BenchmarkMessageEvent(b *testing.B) {
	room := "12"
	p := MessagePayload{ID: 901, CreateDate: "2026-12-04 16:30:01", UpdateDate: "2026-12-04 16:30:01",
		SpeakerID: 3, SpeakerName: "고객", RoomID: 12, RoomName: "고객", CompanyID: "1", Message: "안녕하세요, 요금 문의 드립니다"}
	env := Envelope{EventName: EventMessage, CompanyID: "1", RoomID: &room, Target: TargetBroadcast, SessionID: "abcdef"}
	s := &Service{}
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			env.Data = map[string]any{"message": p}
			if _, err := s.marshal(&env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			env.Data = newMessageData(p)
			if _, err := s.marshal(&env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
