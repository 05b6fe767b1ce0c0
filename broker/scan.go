package broker

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/go-stomp/stomp/v3/frame"
)

// version is a negotiated STOMP protocol version: 10, 11 or 12.
type version uint8

const (
	v10 version = 10
	v11 version = 11
	v12 version = 12
)

func (v version) String() string {
	switch v {
	case v11:
		return "1.1"
	case v12:
		return "1.2"
	default:
		return "1.0"
	}
}

// limits are checked on raw bytes before go-stomp's reader sees a frame:
// that reader allocates whatever content-length claims.
type limits struct {
	maxFrame   int
	maxHeaders int
	maxLine    int
}

// maxCommandLen is the longest client command (UNSUBSCRIBE) plus a CR.
const maxCommandLen = len("UNSUBSCRIBE") + 1

// protocolError is a refusal the client hears about in an ERROR frame
// before the connection closes.
type protocolError struct {
	kind    string // metrics label: "protocol", "limit", "auth", "refused", ...
	message string // the ERROR frame's message header: short and stable
	detail  string // the ERROR frame's body: a readable explanation
}

func (e *protocolError) Error() string { return e.message + ": " + e.detail }

func limitError(message, format string, args ...any) *protocolError {
	return &protocolError{kind: "limit", message: message, detail: fmt.Sprintf(format, args...)}
}

func malformed(message, format string, args ...any) *protocolError {
	return &protocolError{kind: "protocol", message: message, detail: fmt.Sprintf(format, args...)}
}

func isClientCommand(cmd []byte) bool {
	switch string(cmd) {
	case frame.CONNECT, frame.STOMP, frame.SEND, frame.SUBSCRIBE, frame.UNSUBSCRIBE,
		frame.ACK, frame.NACK, frame.BEGIN, frame.COMMIT, frame.ABORT, frame.DISCONNECT:
		return true
	}
	return false
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// scan looks for one frame at the start of buf. It returns skip, the
// heart-beat EOLs before the frame, and n, the length of the complete frame
// after them including its NUL (0 while the frame is incomplete). v selects
// the header escapes allowed; CONNECT and STOMP frames are never escaped.
func (l limits) scan(buf []byte, v version) (skip, n int, perr *protocolError) {
	i := 0
	for i < len(buf) {
		if buf[i] == '\n' {
			i++
			continue
		}
		if buf[i] == '\r' {
			if i+1 == len(buf) {
				break
			}
			if buf[i+1] == '\n' {
				i += 2
				continue
			}
		}
		break
	}
	skip = i
	buf = buf[skip:]
	if len(buf) == 0 || (len(buf) == 1 && buf[0] == '\r') {
		return skip, 0, nil
	}

	eol := bytes.IndexByte(buf, '\n')
	if eol < 0 {
		if len(buf) > maxCommandLen {
			return skip, 0, malformed("invalid command", "the frame does not start with a STOMP client command")
		}
		return skip, 0, nil
	}
	cmd := trimCR(buf[:eol])
	if !isClientCommand(cmd) {
		return skip, 0, malformed("invalid command", "unknown command %.16q", cmd)
	}
	unescaped := string(cmd) == frame.CONNECT || string(cmd) == frame.STOMP || v == v10

	pos := eol + 1
	headers := 0
	contentLength := -1
	for {
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			rest := buf[pos:]
			switch {
			case len(rest) > l.maxLine:
				return skip, 0, limitError("header line too long", "a header line exceeds the limit of %d bytes", l.maxLine)
			case len(buf) > l.maxFrame:
				return skip, 0, limitError("frame too large", "the frame exceeds the limit of %d bytes", l.maxFrame)
			case bytes.IndexByte(rest, 0) >= 0:
				return skip, 0, malformed("invalid frame format", "a NUL byte inside the header block")
			}
			return skip, 0, nil
		}
		if nl > l.maxLine {
			return skip, 0, limitError("header line too long", "a header line exceeds the limit of %d bytes", l.maxLine)
		}
		line := trimCR(buf[pos : pos+nl])
		pos += nl + 1
		if pos > l.maxFrame {
			return skip, 0, limitError("frame too large", "the frame exceeds the limit of %d bytes", l.maxFrame)
		}
		if len(line) == 0 {
			break
		}
		headers++
		if headers > l.maxHeaders {
			return skip, 0, limitError("too many headers", "a frame may carry at most %d headers", l.maxHeaders)
		}
		if bytes.IndexByte(line, 0) >= 0 {
			return skip, 0, malformed("invalid frame format", "a NUL byte inside the header block")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return skip, 0, malformed("invalid frame format", "a header line without a name and a colon")
		}
		if !unescaped && !validEscapes(line, v) {
			return skip, 0, malformed("invalid header escape", "STOMP %s defines only the escapes \\n, \\c, \\\\%s", v, map[bool]string{true: " and \\r"}[v == v12])
		}
		if contentLength < 0 && string(line[:colon]) == frame.ContentLength {
			cl, ok := parseContentLength(line[colon+1:])
			if !ok {
				return skip, 0, malformed("invalid content-length", "content-length must be a decimal number of bytes")
			}
			if cl >= l.maxFrame {
				return skip, 0, limitError("frame too large", "content-length %d exceeds the frame limit of %d bytes", cl, l.maxFrame)
			}
			contentLength = cl
		}
	}

	if contentLength >= 0 {
		total := pos + contentLength + 1
		if total > l.maxFrame {
			return skip, 0, limitError("frame too large", "the frame exceeds the limit of %d bytes", l.maxFrame)
		}
		if len(buf) < total {
			return skip, 0, nil
		}
		if buf[total-1] != 0 {
			return skip, 0, malformed("invalid frame format", "the body is longer than its content-length")
		}
		return skip, total, nil
	}
	z := bytes.IndexByte(buf[pos:], 0)
	if z < 0 {
		if len(buf) >= l.maxFrame {
			return skip, 0, limitError("frame too large", "the frame exceeds the limit of %d bytes", l.maxFrame)
		}
		return skip, 0, nil
	}
	total := pos + z + 1
	if total > l.maxFrame {
		return skip, 0, limitError("frame too large", "the frame exceeds the limit of %d bytes", l.maxFrame)
	}
	return skip, total, nil
}

func parseContentLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil
}

func validEscapes(line []byte, v version) bool {
	for i := 0; i < len(line); i++ {
		if line[i] != '\\' {
			continue
		}
		if i+1 == len(line) {
			return false
		}
		switch line[i+1] {
		case 'n', 'c', '\\':
		case 'r':
			if v < v12 {
				return false
			}
		default:
			return false
		}
		i++
	}
	return true
}

// frameParser wraps a go-stomp reader fed one exact frame at a time, so its
// 4 KiB buffer is pooled rather than held by every idle connection.
type frameParser struct {
	src bytes.Reader
	r   *frame.Reader
}

func newFrameParser() *frameParser {
	p := &frameParser{}
	p.r = frame.NewReader(&p.src)
	return p
}

// parse reads raw, one complete frame as returned by scan. Frames whose
// headers must not be unescaped (STOMP 1.0, CONNECT) get their backslashes
// doubled first, which go-stomp's unescaping turns back into themselves.
// ok reports whether the parser may be reused.
func (p *frameParser) parse(raw []byte, unescaped bool) (f *frame.Frame, ok bool, err error) {
	if unescaped {
		raw = literalBackslashes(raw)
	}
	p.src.Reset(raw)
	f, err = p.r.Read()
	if err == nil && f == nil {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, false, err
	}
	// scan found the exact frame, so the reader has consumed all of raw and
	// holds nothing over for the next frame.
	return f, p.src.Len() == 0, nil
}

func literalBackslashes(raw []byte) []byte {
	end := bytes.Index(raw, []byte("\n\n"))
	if crlf := bytes.Index(raw, []byte("\n\r\n")); crlf >= 0 && (end < 0 || crlf < end) {
		end = crlf
	}
	if end < 0 || bytes.IndexByte(raw[:end], '\\') < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)+8)
	for _, c := range raw[:end] {
		if c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return append(out, raw[end:]...)
}
