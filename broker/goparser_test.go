package broker

import (
	"bytes"
	"io"

	"github.com/go-stomp/stomp/v3/frame"
)

// frameParser is go-stomp's reader fed one exact frame at a time: the
// reference parseFrame is checked against.
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
