package chat

import (
	"bytes"
	"encoding/json"
)

// messageFields is what the data of a MESSAGE event may hold.
type messageFields struct {
	MessageType      flexInt `json:"messageType"`
	Message          *string `json:"message"`
	MessageDetail    *string `json:"messageDetail"`
	Thumbnail        *string `json:"thumbnail"`
	ClientMessageID  *string `json:"clientMessageId"`
	MessageAdminType flexInt `json:"messageAdminType"`
}

// scannedEvent is a SEND body read by scanMessageEvent.
type scannedEvent struct {
	inbound
	dataRoom flexInt // data.roomId
	message  *messageFields
}

// scanMessageEvent reads a MESSAGE event of the usual shape in one pass
// without reflection: every message is decoded, and encoding/json's three
// reflective passes (the envelope, data.roomId, the fields) were a tenth of
// the chat layer's CPU. It answers false for anything else (another event,
// an unknown or repeated key, a value of an unexpected type), which the
// general decode then handles, so every answer and refusal stays its own.
// body is valid UTF-8 (dispatch checks it first).
func scanMessageEvent(body []byte) (scannedEvent, bool) {
	var ev scannedEvent
	if !json.Valid(body) {
		return ev, false
	}
	s := jsonScan{b: body}
	var seen uint8
	ok := s.object(func(key []byte) bool {
		var bit uint8
		switch string(key) {
		case "eventName":
			bit = 1
			name, ok := s.plainString()
			if !ok {
				return false
			}
			ev.EventName = name
		case "roomId":
			bit = 2
			if ev.RoomID.UnmarshalJSON(s.value()) != nil {
				return false
			}
		case "data":
			bit = 4
			ev.Data = s.value()
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if !ok || ev.EventName != EventMessage || len(ev.Data) == 0 || ev.Data[0] != '{' {
		return ev, false
	}
	m, room, ok := scanMessageFields(ev.Data)
	if !ok {
		return ev, false
	}
	ev.message, ev.dataRoom = m, room
	return ev, true
}

// scanMessageFields reads data, a valid JSON object, into messageFields.
func scanMessageFields(data []byte) (*messageFields, flexInt, bool) {
	m := new(messageFields)
	var room flexInt
	s := jsonScan{b: data}
	var seen uint8
	ok := s.object(func(key []byte) bool {
		var bit uint8
		var ok bool
		switch string(key) {
		case "roomId":
			bit, ok = 1, room.UnmarshalJSON(s.value()) == nil
		case "messageType":
			bit, ok = 2, m.MessageType.UnmarshalJSON(s.value()) == nil
		case "messageAdminType":
			bit, ok = 4, m.MessageAdminType.UnmarshalJSON(s.value()) == nil
		case "message":
			bit, ok = 8, s.optionalString(&m.Message)
		case "messageDetail":
			bit, ok = 16, s.optionalString(&m.MessageDetail)
		case "thumbnail":
			bit, ok = 32, s.optionalString(&m.Thumbnail)
		case "clientMessageId":
			bit, ok = 64, s.optionalString(&m.ClientMessageID)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	return m, room, ok
}

// jsonScan walks JSON already known to be valid.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and answers the byte there (0 at the end).
func (s *jsonScan) next() byte {
	s.space()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// object reads an object, calling member with each key (unescaped keys
// only) positioned at its value, which member must consume.
func (s *jsonScan) object(member func(key []byte) bool) bool {
	if s.next() != '{' {
		return false
	}
	s.i++
	if s.next() == '}' {
		s.i++
		return true
	}
	for {
		key, escaped := s.str()
		if escaped {
			return false
		}
		if s.next() != ':' {
			return false
		}
		s.i++
		s.space()
		if !member(key) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str reads the string at i, answering its content between the quotes.
func (s *jsonScan) str() (content []byte, escaped bool) {
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			s.i = j + 1
			return s.b[start:j], escaped
		}
	}
	s.i = len(s.b)
	return nil, escaped
}

// value reads any value, answering its text.
func (s *jsonScan) value() []byte {
	start := s.i
	switch s.b[s.i] {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	default:
		// A number or a literal: up to the next delimiter.
		for s.i < len(s.b) && !isDelimiter(s.b[s.i]) {
			s.i++
		}
	}
	return s.b[start:s.i]
}

// plainString reads a string without escapes.
func (s *jsonScan) plainString() (string, bool) {
	if s.b[s.i] != '"' {
		return "", false
	}
	content, escaped := s.str()
	return string(content), !escaped
}

// optionalString reads a string or null into *dst as encoding/json would.
func (s *jsonScan) optionalString(dst **string) bool {
	raw := s.value()
	switch {
	case string(raw) == "null":
		*dst = nil
		return true
	case raw[0] != '"':
		return false
	case bytes.IndexByte(raw, '\\') < 0:
		v := string(raw[1 : len(raw)-1])
		*dst = &v
		return true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	*dst = &v
	return true
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}
