package broker

import (
	"strings"
	"testing"
)

// accept-language is read as chat.LangFrom reads it: the first English or
// Korean tag decides; without either, Korean.
func TestPrefersEnglish(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "en": true, "EN-us": true, " en-GB": true, "en-US,en;q=0.9": true,
		"fr, en;q=0.8": true, "ko-KR,en;q=0.9": false, "ko": false, "fr": false, "*": false,
		"de;q=0.9, en-GB;q=0.8, ko;q=0.7": true,
	} {
		if got := prefersEnglish(accept); got != want {
			t.Errorf("prefersEnglish(%q) = %v, want %v", accept, got, want)
		}
	}
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("accept-language:fr, en;q=0.8")
	c.write("SEND\n\nx\x00")
	if f := c.expect("ERROR"); strings.Contains(string(f.Body), "헤더") {
		t.Fatalf("English client got %q", f.Body)
	}
}
