package web_test

import (
	"testing"
	"time"
)

// TestCounselingEndToEnd runs `cstalk serve --demo` and
// web/e2e/counseling.spec.cjs in Chromium: a customer writes, the
// AVAILABLE counselor's console gets the room by itself, each side sees the
// other typing, the counselor answers with a reply template picked with
// "/", transfers the room with a note to an AWAY colleague who continues
// and exports the conversation; the room ends and is rated, and the admin
// view's figures change. Screenshots land in web/e2e/artifacts/.
func TestCounselingEndToEnd(t *testing.T) {
	e := newBrowserEnv(t)
	e.runSpec(t, "counseling.spec.cjs", 120*time.Second)
}
