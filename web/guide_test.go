package web_test

import (
	"testing"
	"time"
)

// TestGuideCallEndToEnd runs `cstalk serve --demo` with 20-second tickets and
// web/e2e/guide.spec.cjs in Chromium with a fake camera: a user asks friend
// mate guide-mate1 for a guide on /guide while the mate's page is closed,
// the reopened page finds the request in /guide/requests and the mate
// approves, each page decodes the other's video, the user's page begins
// the guide, both pages show the server's clock and its warning, the user
// extends and then ends the guide while the mate's page is away (which
// comes back to the summary from the session check), rates the mate and
// sees the ranking, and the mate writes the CRM note; the spec checks
// tickets, rating and note through the API too. Screenshots land in
// web/e2e/artifacts/.
func TestGuideCallEndToEnd(t *testing.T) {
	e := newBrowserEnv(t, "--guide-ticket-duration", "20s", "--guide-warn-before", "15s", "--guide-request-timeout", "30s")
	e.runSpec(t, "guide.spec.cjs", 150*time.Second, "CSTALK_GUIDE_TICKET_SECONDS=20", "CSTALK_GUIDE_WARN_SECONDS=15")
}
