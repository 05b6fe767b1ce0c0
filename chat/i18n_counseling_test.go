package chat

import (
	"strings"
	"testing"
)

// The counseling texts are found by Lang.T after the other catalogs: a key
// that also existed there would show another text.
func TestCounselingTextsComplete(t *testing.T) {
	for key, txt := range counselingTexts {
		for name, other := range map[string]map[string]text{"event": eventTexts, "api": apiTexts, "video": videoTexts, "admin": adminTexts} {
			if _, clash := other[key]; clash {
				t.Errorf("counseling text %q is also a %s text", key, name)
			}
		}
		if strings.TrimSpace(txt.ko) == "" || strings.TrimSpace(txt.en) == "" {
			t.Errorf("counseling text %q lacks a language", key)
		}
		if strings.Count(txt.ko, "%") != strings.Count(txt.en, "%") {
			t.Errorf("counseling text %q: Korean and English take different arguments", key)
		}
		if got := English.T(key); got != txt.en {
			t.Errorf("English.T(%q) = %q, want %q", key, got, txt.en)
		}
	}
}
