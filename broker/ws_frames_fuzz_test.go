package broker

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzDecodeWebSocket feeds the raw WebSocket's frame reader arbitrary
// client bytes, whole and split in two at an arbitrary point: it must not
// panic, and both ways must hand the connection the same payload bytes and
// stop at the same error, since a socket's reads may split frames anywhere.
func FuzzDecodeWebSocket(f *testing.F) {
	seeds := [][]byte{
		clientFrame(0x80|opText, []byte("CONNECT\naccept-version:1.2\n\n\x00")),
		append(clientFrame(opText, []byte("SEND\n")), clientFrame(0x80|opContinuation, []byte("\n\x00"))...),
		append(clientFrame(0x80|opPing, []byte("p")), clientFrame(0x80|opBinary, bytes.Repeat([]byte{0xff}, 130))...),
		clientFrame(0x80|opClose, []byte{0x03, 0xe8}),
		clientFrame(0x80|opClose, []byte{0x03}),
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},                                                   // not masked
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},                                     // length out of range
		{0x83, 0x80, 1, 2, 3, 4},                                                                // unknown opcode
		append(clientFrame(0x80|opText, nil), clientFrame(0x80|opContinuation, []byte("x"))...), // orphan continuation
	}
	for i, s := range seeds {
		f.Add(s, uint16(i*5))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		whole, wholeErr := decodeAll(t, data)
		parts, partsErr := decodeAll(t, data[:cut], data[cut:])
		if (wholeErr == nil) != (partsErr == nil) {
			t.Fatalf("whole: %v; split at %d: %v", wholeErr, cut, partsErr)
		}
		if !bytes.Equal(whole, parts) {
			t.Fatalf("whole gave %q, split at %d gave %q", whole, cut, parts)
		}
		if len(whole) > len(data) {
			t.Fatalf("%d payload bytes out of %d input bytes", len(whole), len(data))
		}
	})
}

// decodeAll decodes pieces in order on a fresh transport whose answers
// (pongs, closes) are read and dropped, up to the first error.
func decodeAll(t *testing.T, pieces ...[]byte) ([]byte, error) {
	t.Helper()
	server, client := net.Pipe()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, client)
	}()
	defer func() {
		_ = server.Close()
		<-drained
		_ = client.Close()
	}()
	tr := &wsTransport{nc: server, writeTimeout: time.Second}
	var got []byte
	for _, p := range pieces {
		data, err := tr.decode(append([]byte(nil), p...))
		got = append(got, data...)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}
