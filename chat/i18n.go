package chat

import "strings"

// Lang is the language user-visible text is written in: Korean unless the
// client asked for English (accept-language on CONNECT or HTTP).
type Lang int

const (
	Korean Lang = iota
	English
)

// LangFrom picks the language of an accept-language value; anything that
// does not prefer English gets Korean.
func LangFrom(acceptLanguage string) Lang {
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "en"):
			return English
		case strings.HasPrefix(tag, "ko"):
			return Korean
		}
	}
	return Korean
}

// text is one user-visible string in every language we speak.
type text struct{ ko, en string }

// T returns the text for key in l. Keys live in the catalogs of this package
// (eventTexts for the STOMP side, apiTexts for the HTTP side); an unknown key
// is a programming error and is shown as the key itself so it is noticed.
func (l Lang) T(key string) string {
	t, ok := eventTexts[key]
	if !ok {
		t, ok = apiTexts[key]
	}
	if !ok {
		t, ok = videoTexts[key]
	}
	if !ok {
		t, ok = counselingTexts[key]
	}
	if !ok {
		return key
	}
	if l == English {
		return t.en
	}
	return t.ko
}
