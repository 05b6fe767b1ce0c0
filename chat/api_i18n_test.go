package chat

import (
	"strings"
	"testing"
)

// Lang.T searches eventTexts first, so an API key that also existed there
// would silently show the STOMP side's text.
func TestAPITextsComplete(t *testing.T) {
	for key, txt := range apiTexts {
		if !strings.HasPrefix(key, "api_") {
			t.Errorf("API text %q: keys start with api_", key)
		}
		if _, clash := eventTexts[key]; clash {
			t.Errorf("API text %q is also an event text", key)
		}
		if txt.ko == "" || txt.en == "" {
			t.Errorf("API text %q lacks a language: %+v", key, txt)
		}
		if strings.Count(txt.ko, "%") != strings.Count(txt.en, "%") {
			t.Errorf("API text %q: Korean and English take different arguments", key)
		}
		if got := Korean.T(key); got != txt.ko {
			t.Errorf("Korean.T(%q) = %q, want %q", key, got, txt.ko)
		}
	}
}
