package chat

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

var inboundSamples = []string{
	`{"eventName":"MESSAGE","data":{"messageType":0,"messageDetail":"","message":"안녕하세요"}}`,
	`{"eventName":"MESSAGE","roomId":7,"data":{"messageType":"1","messageDetail":"{\"a\":[1,{\"b\":\"]\"}]}","message":null,"clientMessageId":" c-1 ","roomId":"9"}}`,
	` { "data" : { "message" : "line\nbreak \"q\" \u00e9 \ud83d\ude00" , "thumbnail":"t", "messageAdminType": 1 } , "eventName" : "MESSAGE" } `,
	`{"eventName":"MESSAGE","data":{"messageType":3.0,"message":"x","roomId":null}}`,
	`{"eventName":"MESSAGE","data":{"messageType":true,"message":"x","roomId":""}}`,
	`{"eventName":"MESSAGE","data":{}}`,
	`{"eventName":"MESSAGE","data":{"message":"x","extra":[1,2]}}`,
	`{"eventName":"MESSAGE","data":{"message":"x","message":"y"}}`,
	`{"eventName":"MESSAGE","data":{"Message":"x"}}`,
	`{"eventName":"MESSAGE","data":{"mess\u0061ge":"x"}}`,
	`{"eventName":"MESSAGE","data":{"message":5}}`,
	`{"eventName":"MESSAGE","data":{"messageType":"x1","message":"x"}}`,
	`{"eventName":"MESSAGE","data":[1]}`,
	`{"eventName":"MESSAGE","data":null}`,
	`{"eventName":"MESSAGE"}`,
	`{"eventName":"MESS\u0041GE","data":{}}`,
	`{"eventName":"MESSAGE","eventName":"TYPING","data":{}}`,
	`{"eventName":"TYPING","data":{"roomId":1}}`,
	`{"eventName":"MESSAGE","roomId":{"x":1},"data":{}}`,
	`{"eventName":"MESSAGE","data":{"message":"x"}`,
	`{"eventName":"MESSAGE","data":{"message":"x"}} x`,
	`["MESSAGE"]`,
	``,
}

// TestScanMessageEvent: wherever the one-pass read answers, it answers
// what the general decode does; it answers for the usual MESSAGE shapes.
func TestScanMessageEvent(t *testing.T) {
	for i, body := range inboundSamples {
		ev, ok := scanMessageEvent([]byte(body))
		if i < 6 && !ok {
			t.Errorf("sample %d %s: not read in one pass", i, body)
		}
		if ok {
			checkScanned(t, body, ev)
		}
	}
}

func FuzzScanMessageEvent(f *testing.F) {
	for _, body := range inboundSamples {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !utf8.ValidString(body) {
			return // dispatch refuses it first
		}
		if ev, ok := scanMessageEvent([]byte(body)); ok {
			checkScanned(t, body, ev)
		}
	})
}

// checkScanned compares ev with what dispatch's general decode reads.
func checkScanned(t *testing.T, body string, ev scannedEvent) {
	t.Helper()
	var in inbound
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatalf("%s: read in one pass, but the general decode fails: %v", body, err)
	}
	var inData struct {
		RoomID flexInt `json:"roomId"`
	}
	if err := json.Unmarshal(in.Data, &inData); err != nil {
		t.Fatalf("%s: read in one pass, but data's roomId is not: %v", body, err)
	}
	var m messageFields
	if err := json.Unmarshal(in.Data, &m); err != nil {
		t.Fatalf("%s: read in one pass, but the fields are not: %v", body, err)
	}
	if ev.EventName != in.EventName || ev.RoomID != in.RoomID || string(ev.Data) != string(in.Data) ||
		ev.dataRoom != inData.RoomID || !reflect.DeepEqual(*ev.message, m) {
		t.Fatalf("%s: one pass read %+v %+v, the general decode %+v %+v %+v", body, ev, *ev.message, in, inData, m)
	}
}

// BenchmarkDecodeMessageEvent: a chat client's MESSAGE, read in one pass
// and by the general decode.
func BenchmarkDecodeMessageEvent(b *testing.B) {
	body := []byte(`{"eventName":"MESSAGE","data":{"messageType":0,"messageDetail":"","message":"안녕하세요, 상담 문의드립니다 0123456789"}}`)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := scanMessageEvent(body); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in inbound
			var inData struct {
				RoomID flexInt `json:"roomId"`
			}
			var m messageFields
			if json.Unmarshal(body, &in) != nil || json.Unmarshal(in.Data, &inData) != nil || json.Unmarshal(in.Data, &m) != nil {
				b.Fatal("not read")
			}
		}
	})
}
