package chat

import (
	"strconv"
	"unicode/utf8"
)

// messageData is the data of a MESSAGE event: {"message": {...}}, as a
// map[string]any would encode it. marshal encodes an envelope holding one
// by hand: every stored message is encoded once per fan-out, and the
// reflective encoder (with a map, its sorted keys and a boxed payload) was
// most of the MESSAGE path's JSON cost.
type messageData struct {
	Message MessagePayload `json:"message"`
}

func newMessageData(p MessagePayload) *messageData { return &messageData{Message: p} }

// appendMessageEvent appends env, whose Data is d, exactly as json.Marshal
// encodes it: the same field order (the spec's), omissions and escapes.
func appendMessageEvent(b []byte, env *Envelope, d *messageData) []byte {
	b = append(b, `{"eventName":`...)
	b = appendJSONString(b, env.EventName)
	b = append(b, `,"companyId":`...)
	b = appendJSONString(b, env.CompanyID)
	if env.RoomID != nil {
		b = append(b, `,"roomId":`...)
		b = appendJSONString(b, *env.RoomID)
	}
	b = append(b, `,"data":{"message":`...)
	b = appendMessagePayload(b, &d.Message)
	b = append(b, '}')
	if env.Target != "" {
		b = append(b, `,"target":`...)
		b = appendJSONString(b, env.Target)
	}
	if env.SessionID != "" {
		b = append(b, `,"sessionId":`...)
		b = appendJSONString(b, env.SessionID)
	}
	return append(b, '}')
}

func appendMessagePayload(b []byte, p *MessagePayload) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"joinMessageId":`...)
	b = strconv.AppendInt(b, p.JoinMessageID, 10)
	b = append(b, `,"createDate":`...)
	b = appendJSONString(b, p.CreateDate)
	b = append(b, `,"updateDate":`...)
	b = appendJSONString(b, p.UpdateDate)
	b = append(b, `,"speakerId":`...)
	b = strconv.AppendInt(b, p.SpeakerID, 10)
	b = append(b, `,"speakerName":`...)
	b = appendJSONString(b, p.SpeakerName)
	b = append(b, `,"roomId":`...)
	b = strconv.AppendInt(b, p.RoomID, 10)
	b = append(b, `,"roomName":`...)
	b = appendJSONString(b, p.RoomName)
	b = append(b, `,"companyId":`...)
	b = appendJSONString(b, p.CompanyID)
	b = append(b, `,"messageType":`...)
	b = strconv.AppendInt(b, int64(p.MessageType), 10)
	b = append(b, `,"noReadCount":`...)
	b = strconv.AppendInt(b, int64(p.NoReadCount), 10)
	b = append(b, `,"isSystemMessage":`...)
	b = strconv.AppendInt(b, int64(p.IsSystemMessage), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, p.Message)
	b = append(b, `,"messageAdminType":`...)
	b = strconv.AppendInt(b, int64(p.MessageAdminType), 10)
	b = append(b, `,"isEmployee":`...)
	b = strconv.AppendInt(b, int64(p.IsEmployee), 10)
	b = append(b, `,"isCustomer":`...)
	b = strconv.AppendInt(b, int64(p.IsCustomer), 10)
	b = append(b, `,"isOnline":`...)
	b = strconv.AppendInt(b, int64(p.IsOnline), 10)
	b = append(b, `,"messageDetail":`...)
	b = appendJSONString(b, p.MessageDetail)
	if p.Thumbnail != "" {
		b = append(b, `,"thumbnail":`...)
		b = appendJSONString(b, p.Thumbnail)
	}
	b = append(b, `,"isDeleted":`...)
	b = strconv.AppendInt(b, int64(p.IsDeleted), 10)
	if p.ClientMessageID != "" {
		b = append(b, `,"clientMessageId":`...)
		b = appendJSONString(b, p.ClientMessageID)
	}
	return append(b, '}')
}

// messageEventSize is about what appendMessageEvent appends, so the body is
// allocated once.
func messageEventSize(env *Envelope, p *MessagePayload) int {
	const fixed = 480 // the names, punctuation and numbers
	return fixed + len(env.CompanyID) + len(env.SessionID) + len(p.SpeakerName) + len(p.RoomName) +
		len(p.Message) + len(p.MessageDetail) + len(p.Thumbnail) + len(p.ClientMessageID)
}

const jsonHex = "0123456789abcdef"

// appendJSONString appends s as encoding/json does by default: <, > and &
// escaped for HTML, \b and \f short, invalid UTF-8 as U+FFFD, U+2028 and
// U+2029 escaped. (The broker's SockJS framing has its own, whose bytes
// differ: each must keep the bytes its clients have always had.)
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', jsonHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
