package broker

import (
	"bytes"
	"strconv"
	"testing"
)

// FuzzReadFrame drives the limit scanner and go-stomp's reader the way a
// connection does, whole and split in two at an arbitrary point: the two
// must agree, every frame the scanner passes must parse, and nothing the
// connection keeps may exceed the frame limit.
func FuzzReadFrame(f *testing.F) {
	seeds := []string{
		"CONNECT\naccept-version:1.2\nhost:x\n\n\x00",
		"STOMP\r\naccept-version:1.0,1.1,1.2\r\nheart-beat:10000,10000\r\n\r\n\x00",
		"SEND\ndestination:/sub/a\ncontent-length:5\n\nab\x00cd\x00\n\n",
		"SEND\ndestination:/pub/socket/message\ncontent-type:application/json\n\n{\"eventName\":\"MESSAGE\"}\x00",
		"SUBSCRIBE\nid:0\ndestination:/sub/x\\cy\\\\z\nack:client\n\n\x00UNSUBSCRIBE\nid:0\n\n\x00",
		"\n\r\n\nACK\nid:12\n\n\x00",
		"SEND\ndestination:/sub/a\ncontent-length:999999999\n\n",
		"SEND\ndestination:/sub/a\ncontent-length:-1\n\nx\x00",
		"FROB\n\n\x00",
		"SEND\nno colon\n\n\x00",
		"SEND\ndestination:/sub/a\\t\n\n\x00",
		"SEND\nh\x00:v\n\n\x00",
		"DISCONNECT\nreceipt:77\n\n\x00",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*7), uint8(i%3))
	}
	l := limits{maxFrame: 512, maxHeaders: 8, maxLine: 128}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, vsel uint8) {
		v := []version{v10, v11, v12}[int(vsel)%3]
		whole, wholeErr := readAll(t, l, v, data)
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		parts, partsErr := readAll(t, l, v, data[:cut], data[cut:])
		if (wholeErr == nil) != (partsErr == nil) || (wholeErr != nil && wholeErr.message != partsErr.message) {
			// A split may only let an error surface later, never change it,
			// except that a frame refused whole cannot be accepted in parts.
			if wholeErr != nil && partsErr == nil {
				t.Fatalf("whole: %v; split at %d: accepted", wholeErr, cut)
			}
			if partsErr != nil && wholeErr == nil {
				t.Fatalf("split at %d: %v; whole: accepted", cut, partsErr)
			}
		}
		if len(whole) != len(parts) && wholeErr == nil && partsErr == nil {
			t.Fatalf("whole gave %d frames, split at %d gave %d", len(whole), cut, len(parts))
		}
		for i := range min(len(whole), len(parts)) {
			if !bytes.Equal(whole[i], parts[i]) {
				t.Fatalf("frame %d differs: %q vs %q", i, whole[i], parts[i])
			}
		}
	})
}

// readAll feeds chunks to an inputBuffer and parses every frame it yields.
func readAll(t *testing.T, l limits, v version, chunks ...[]byte) ([][]byte, *protocolError) {
	var in inputBuffer
	var frames [][]byte
	p := newFrameParser()
	for _, chunk := range chunks {
		var parseErr error
		_, perr := in.feed(chunk, l, &v, func(raw []byte) bool {
			if len(raw) > l.maxFrame {
				t.Fatalf("frame of %d bytes passed a %d byte limit", len(raw), l.maxFrame)
			}
			unescaped := v == v10 || bytes.HasPrefix(raw, []byte("CONNECT")) || bytes.HasPrefix(raw, []byte("STOMP"))
			fr, reusable, err := p.parse(raw, unescaped)
			if err != nil {
				parseErr = err
				return false
			}
			if !reusable {
				p = newFrameParser()
			}
			if !bytes.HasPrefix(raw, []byte(fr.Command)) {
				t.Fatalf("command %q from %q", fr.Command, raw)
			}
			if cl, ok := fr.Header.Contains("content-length"); ok {
				if n, _ := strconv.Atoi(cl); n != len(fr.Body) {
					t.Fatalf("content-length %s, body %d bytes", cl, len(fr.Body))
				}
			}
			frames = append(frames, append([]byte(nil), raw...))
			return true
		})
		if parseErr != nil {
			t.Fatalf("scanner passed a frame go-stomp cannot read: %v: %q", parseErr, frames)
		}
		if len(in.pending) > l.maxFrame {
			t.Fatalf("kept %d bytes over a %d byte limit", len(in.pending), l.maxFrame)
		}
		if perr != nil {
			return frames, perr
		}
	}
	return frames, nil
}
