package broker

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Outbound frames are encoded here rather than with go-stomp's frame.Writer:
// that writer applies STOMP 1.2 escaping to every version and every command
// (CONNECTED must not be escaped, 1.0 has no escapes), and a fan-out needs
// the shared part of a MESSAGE encoded once for all subscribers.

// appendHeader appends "key:value\n" with the escaping of version v.
func appendHeader(b []byte, v version, key, value string) []byte {
	b = appendEscaped(b, v, key)
	b = append(b, ':')
	b = appendEscaped(b, v, value)
	return append(b, '\n')
}

func appendEscaped(b []byte, v version, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case v == v10 || v == 0:
			// 1.0 has no escapes; a raw EOL would end the header early.
			if c == '\n' || c == '\r' {
				c = ' '
			}
			b = append(b, c)
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == ':':
			b = append(b, '\\', 'c')
		case c == '\r' && v == v12:
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendUint(b []byte, n uint64) []byte { return strconv.AppendUint(b, n, 10) }

// encodeConnected is never escaped (STOMP 1.2 section "Value Encoding").
func encodeConnected(v version, session, server string, hbSend, hbRecv int64) []byte {
	b := make([]byte, 0, 96)
	b = append(b, "CONNECTED\nversion:"...)
	b = append(b, v.String()...)
	b = append(b, "\nsession:"...)
	b = append(b, session...)
	b = append(b, "\nserver:"...)
	b = append(b, server...)
	b = append(b, "\nheart-beat:"...)
	b = strconv.AppendInt(b, hbSend, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, hbRecv, 10)
	return append(b, "\n\n\x00"...)
}

func encodeReceipt(v version, receiptID string) []byte {
	b := make([]byte, 0, 32+len(receiptID))
	b = append(b, "RECEIPT\n"...)
	b = appendHeader(b, v, "receipt-id", receiptID)
	return append(b, "\n\x00"...)
}

func encodeError(v version, e *protocolError, receiptID string, extra ...string) []byte {
	body := e.detail
	if body == "" {
		body = e.message
	}
	b := make([]byte, 0, 96+len(e.message)+len(body))
	b = append(b, "ERROR\n"...)
	b = appendHeader(b, v, "message", e.message)
	if receiptID != "" {
		b = appendHeader(b, v, "receipt-id", receiptID)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		b = appendHeader(b, v, extra[i], extra[i+1])
	}
	b = append(b, "content-type:text/plain;charset=UTF-8\ncontent-length:"...)
	b = strconv.AppendInt(b, int64(len(body)+1), 10)
	b = append(b, "\n\n"...)
	b = append(b, body...)
	return append(b, "\n\x00"...)
}

// encodeMessageSuffix encodes what every subscriber's MESSAGE shares:
// content-type, content-length, the blank line, the body and the NUL.
// Bodies are text (JSON) and must reach browsers as valid UTF-8 in a text
// WebSocket or SockJS message, so invalid bytes become U+FFFD here, before
// content-length is counted.
func encodeMessageSuffix(contentType string, body []byte) []byte {
	if !utf8.Valid(body) {
		body = bytes.ToValidUTF8(body, []byte("\uFFFD"))
	}
	b := make([]byte, 0, 48+len(contentType)+len(body))
	if contentType != "" {
		b = append(b, "content-type:"...)
		b = append(b, contentType...)
		b = append(b, '\n')
	}
	b = append(b, "content-length:"...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\n\n"...)
	b = append(b, body...)
	return append(b, 0)
}

// encodeSubscriptionPrefix encodes the MESSAGE headers fixed for one
// subscription: the destination as the subscriber spelled it and its id. It
// is a string of its exact length, so the subscription's id and destination
// can be kept as parts of it (substringOf) rather than copies of their own.
func encodeSubscriptionPrefix(v version, destination, id string) string {
	var buf [128]byte
	b := append(buf[:0], "MESSAGE\n"...)
	b = appendHeader(b, v, "destination", destination)
	b = appendHeader(b, v, "subscription", id)
	return string(b)
}

// substringOf returns v as a part of s when s holds it, else a copy of v
// (a header value shares one string with the frame's whole header block).
func substringOf(s, v string) string {
	if i := strings.Index(s, v); i >= 0 {
		return s[i : i+len(v)]
	}
	return strings.Clone(v)
}
