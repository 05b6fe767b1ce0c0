package chat

import (
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"
)

// Every error example in openapi.yaml must be a text the server really
// sends, so the document cannot drift from the catalog.
func TestOpenAPIErrorExamplesAreRealTexts(t *testing.T) {
	var doc any
	if err := yaml.Unmarshal([]byte(openAPISpec), &doc); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	var texts []text
	for _, catalog := range []map[string]text{apiTexts, counselingTexts, adminTexts} {
		for _, txt := range catalog {
			texts = append(texts, txt)
		}
	}
	for _, txt := range texts {
		for _, s := range []string{txt.ko, txt.en} {
			known[s] = true
			known[fmt.Sprintf(s, "10 MB")] = true
		}
	}
	found := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			code, hasCode := v["code"].(int)
			msg, hasMsg := v["message"]
			if hasCode && hasMsg && code >= 400 {
				found++
				if s, ok := msg.(string); !ok || !known[s] {
					t.Errorf("error example %d %q is not a text of the API", code, msg)
				}
			}
			for _, child := range v {
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
	if found < 10 {
		t.Errorf("only %d error examples found", found)
	}
}
