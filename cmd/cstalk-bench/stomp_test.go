package main

import (
	"strings"
	"testing"
)

func TestParseFrame(t *testing.T) {
	stream := "\n\nMESSAGE\ndestination:sub/a\ncontent-length:5\n\nab\x00cd\x00" + // NUL inside a counted body
		"\r\n" + // heart-beat
		"RECEIPT\r\nreceipt-id:r1\r\n\r\n\x00" + // CRLF lines, no body
		"ERROR\nmessage:bad\n\nwhy\x00"
	var got []string
	b := []byte(stream)
	for {
		f, n, ok := parseFrame(b)
		if !ok {
			break
		}
		got = append(got, string(f.command)+"|"+f.header("destination")+f.header("receipt-id")+f.header("message")+"|"+string(f.body))
		b = b[n:]
	}
	want := []string{"MESSAGE|sub/a|ab\x00cd", "RECEIPT|r1|", "ERROR|bad|why"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("frames = %q, want %q", got, want)
	}
	if len(b) != 0 {
		t.Fatalf("%q left over", b)
	}
}

func TestParseFrameWaitsForTheWholeFrame(t *testing.T) {
	full := "MESSAGE\ncontent-length:4\n\nbody\x00"
	for i := 0; i < len(full); i++ {
		if _, _, ok := parseFrame([]byte(full[:i])); ok {
			t.Fatalf("parsed a frame from the first %d of %d bytes", i, len(full))
		}
	}
	if _, n, ok := parseFrame([]byte(full)); !ok || n != len(full) {
		t.Fatalf("whole frame: ok=%v n=%d", ok, n)
	}
}

func TestStamp(t *testing.T) {
	b := appendStamp(nil, 1234567890123, 7, 64)
	if len(b) != 64 {
		t.Fatalf("len = %d, want 64", len(b))
	}
	if n, ok := parseStamp(b); !ok || n != 1234567890123 {
		t.Fatalf("parseStamp = %d, %v", n, ok)
	}
	if _, ok := parseStamp([]byte("hello|")); ok {
		t.Fatal("parsed a stamp from text")
	}
}
