package web_test

import (
	"testing"
	"time"
)

// TestSockJSTransportsInChromium forces each SockJS transport, the iframe and
// JSONP ones only a browser has included, in Chromium with sockjs-client and
// stompjs 2.x against `cstalk serve --demo`: web/e2e/transports.spec.cjs.
func TestSockJSTransportsInChromium(t *testing.T) {
	newBrowserEnv(t).runSpec(t, "transports.spec.cjs", 150*time.Second)
}
