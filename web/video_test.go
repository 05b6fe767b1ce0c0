package web_test

import (
	"testing"
	"time"
)

// TestVideoCallEndToEnd runs `cstalk serve --demo` and web/e2e/video.spec.cjs
// in Chromium with a fake camera: a counselor and a customer escalate their
// chat into a video call, each page decodes the other's video through the
// SFU, the customer hangs up and both chats show the call's system
// messages. Screenshots land in web/e2e/artifacts/.
func TestVideoCallEndToEnd(t *testing.T) {
	newBrowserEnv(t).runSpec(t, "video.spec.cjs", 120*time.Second)
}
