package video

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/videotest"
)

// nodeClient runs testdata/sockjs-signal.cjs: sockjs-client 1.6 from
// web/node_modules, the library the deployed seed-002 page uses.
type nodeClient struct {
	t    *testing.T
	node *videotest.Node
}

func startNodeClient(t *testing.T, url, transport string) *nodeClient {
	t.Helper()
	return &nodeClient{t: t, node: videotest.StartNode(t, "sockjs-client", "testdata/sockjs-signal.cjs", url, transport)}
}

func (c *nodeClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.node.Send(b)
}

// await waits for a line containing every one of parts.
func (c *nodeClient) await(parts ...string) string {
	c.t.Helper()
	return c.node.Take(10*time.Second, func(l string) error {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return fmt.Errorf("%q lacks %q", l, p)
			}
		}
		return nil
	})
}

// TestSockJSClient: sockjs-client over each transport it has in Node joins,
// is announced, gets errors for bad input and leaves.
func TestSockJSClient(t *testing.T) {
	// Pings every 400 ms: a client idle for several ping intervals must
	// stay. Shorter intervals make the 3-interval idle cut-off smaller than
	// the stalls of a loaded test machine, which drops the Go client.
	ts := startServer(t, func(c *Config) { c.PingInterval = 400 * time.Millisecond })
	for i, transport := range []string{"websocket", "xhr-streaming", "xhr-polling", "eventsource"} {
		t.Run(transport, func(t *testing.T) {
			room := "c-" + transport
			g := dial(t, ts, "go", "/signal")
			g.join(room, true, true)
			n := startNodeClient(t, ts.http.URL+"/signal", transport)
			n.await("OPEN " + transport)
			user := "node" + string(rune('a'+i))
			n.send(map[string]any{"id": "joinRoom", "token": "tok-" + user, "userId": user, "communityId": "1", "roomId": room, "video": true, "audio": true})
			n.await(`"existingParticipants"`, `"userId":"go"`)
			g.await("newParticipantArrived")
			time.Sleep(2 * time.Second) // idle: only pings and heart-beats flow
			n.send(map[string]any{"id": "nonsense"})
			n.await(`"error"`, `"unknownMessage"`)
			n.send(map[string]any{"id": "audioStateFrom", "userId": user, "audio": false})
			n.await(`"audioStateAnswer"`)
			g.await("audioStateAnswer", "userId", user)
			n.send(map[string]any{"id": "leaveRoom"})
			g.await("participantLeft", "userId", user)
			g.checkRules()
		})
	}
}
