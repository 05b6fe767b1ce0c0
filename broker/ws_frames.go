package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Reading the raw WebSocket's frames (RFC 6455 5). STOMP does not care
// where a message ends, so the payload bytes of text and binary frames go
// to the connection as one stream; pings are answered, pongs dropped, a
// close is answered and ends the connection.

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	maxControlPayload = 125

	closeNormal        = 1000
	closeProtocolError = 1002
	closeNoStatus      = 1005 // never sent: the peer's close carried no code
)

// errPeerClosed ends the reader when the peer's close frame has come.
var errPeerClosed = errors.New("broker: websocket closed by the peer")

// wsReader is where the reader is between reads: within a frame header,
// within a frame's payload, or between frames. Reader goroutine only.
type wsReader struct {
	hdr     [14]byte // the header read so far, while inFrame is false
	nhdr    uint8
	inFrame bool  // the header is read; left payload bytes follow
	opcode  byte  // of the frame being read
	more    bool  // a fragmented data message goes on in further frames
	left    int64 // payload bytes of the frame still to come
	pos     int   // payload bytes of the frame read so far
	mask    [4]byte
	ctl     []byte // a control frame's payload, only while one is read
}

// decode unmasks the data frames' payload in b in place and returns it,
// moved to the front of b; control frames are handled on the way. The
// frames may begin or end outside b.
func (t *wsTransport) decode(b []byte) ([]byte, error) {
	in := &t.in
	w, r := 0, 0
	for {
		if !in.inFrame {
			ok, err := in.readHeader(b, &r)
			if err != nil {
				t.refuse(err)
				return b[:w], err
			}
			if !ok {
				return b[:w], nil
			}
		}
		k := int(min(int64(len(b)-r), in.left))
		p := b[r : r+k]
		maskBytes(in.mask, in.pos, p)
		if in.opcode < opClose {
			w += copy(b[w:], p)
		} else {
			in.ctl = append(in.ctl, p...)
		}
		r += k
		in.left -= int64(k)
		in.pos += k
		if in.left > 0 {
			return b[:w], nil
		}
		in.inFrame = false
		if in.opcode >= opClose {
			err := t.control(in.opcode, in.ctl)
			in.ctl = nil
			if err != nil {
				return b[:w], err
			}
		}
		if r == len(b) {
			return b[:w], nil
		}
	}
}

// readHeader takes header bytes from b[*r:] until the header is whole
// (true) or b is used up (false), then checks it.
func (in *wsReader) readHeader(b []byte, r *int) (bool, error) {
	for {
		need := 2
		if in.nhdr >= 2 {
			if in.hdr[1]&0x80 == 0 { // said now: the bytes that follow may never come
				in.nhdr = 0
				return false, errors.New("client frame not masked")
			}
			need = 2 + 4
			switch in.hdr[1] & 0x7F {
			case 126:
				need += 2
			case 127:
				need += 8
			}
		}
		if int(in.nhdr) >= need {
			break
		}
		if *r == len(b) {
			return false, nil
		}
		k := copy(in.hdr[in.nhdr:need], b[*r:])
		in.nhdr += uint8(k)
		*r += k
	}
	h := in.hdr[:in.nhdr]
	in.nhdr = 0
	fin, opcode := h[0]&0x80 != 0, h[0]&0x0F
	if h[0]&0x70 != 0 {
		return false, errors.New("reserved bits set")
	}
	n, rest := int64(h[1]&0x7F), h[2:]
	switch n {
	case 126:
		n, rest = int64(binary.BigEndian.Uint16(rest)), rest[2:]
	case 127:
		u := binary.BigEndian.Uint64(rest)
		if u > 1<<62 {
			return false, errors.New("frame length out of range")
		}
		n, rest = int64(u), rest[8:]
	}
	switch opcode {
	case opContinuation:
		if !in.more {
			return false, errors.New("continuation frame without a message")
		}
		in.more = !fin
	case opText, opBinary:
		if in.more {
			return false, errors.New("data frame within a fragmented message")
		}
		in.more = !fin
	case opClose, opPing, opPong:
		if !fin || n > maxControlPayload {
			return false, errors.New("fragmented or long control frame")
		}
	default:
		return false, fmt.Errorf("unknown opcode %d", opcode)
	}
	copy(in.mask[:], rest)
	in.opcode, in.left, in.pos, in.inFrame = opcode, n, 0, true
	return true, nil
}

// control answers a ping with a pong and a close with a close.
func (t *wsTransport) control(opcode byte, payload []byte) error {
	switch opcode {
	case opPing:
		t.wmu.Lock()
		// A pong that cannot be written is the writer's error, not the
		// reader's: it meets the same socket.
		_ = t.writeControlLocked(opPong, payload, time.Now().Add(time.Second))
		t.wmu.Unlock()
	case opClose:
		code := closeNoStatus
		switch {
		case len(payload) == 1:
			t.refuse(errors.New("close frame of one byte"))
			return errPeerClosed
		case len(payload) >= 2:
			code = int(binary.BigEndian.Uint16(payload))
			if !validCloseCode(code) || !utf8.Valid(payload[2:]) {
				t.refuse(errors.New("invalid close frame"))
				return errPeerClosed
			}
		}
		t.wmu.Lock()
		// After our own close this is the answer to it: nothing to send.
		_ = t.writeControlLocked(opClose, closePayload(code), time.Now().Add(time.Second))
		t.wmu.Unlock()
		return errPeerClosed
	}
	return nil
}

// refuse tells the peer it broke the protocol, in a close frame.
func (t *wsTransport) refuse(err error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	p := closePayload(closeProtocolError)
	p = append(p, err.Error()...)
	_ = t.writeControlLocked(opClose, p[:min(len(p), maxControlPayload)], time.Now().Add(time.Second))
}

// closePayload is a close frame's payload for code; none for closeNoStatus.
func closePayload(code int) []byte {
	if code == closeNoStatus {
		return nil
	}
	return binary.BigEndian.AppendUint16(make([]byte, 0, maxControlPayload), uint16(code))
}

// validCloseCode reports whether a peer may send code (RFC 6455 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}

// maskBytes unmasks b, the payload bytes of a frame from offset pos on.
func maskBytes(key [4]byte, pos int, b []byte) {
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	k32 := uint64(binary.LittleEndian.Uint32(k[:]))
	k64 := k32 | k32<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
}
