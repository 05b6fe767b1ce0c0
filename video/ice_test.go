package video

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/turn/v2"
)

// TestICEServersAndTURN: the join answer and GET /video/ice-servers hand out
// STUN and TURN with time-limited credentials that the embedded TURN
// server accepts, and refuses once expired.
func TestICEServersAndTURN(t *testing.T) {
	var offset atomic.Int64 // how far the server's clock is ahead
	clockNow := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ts := startServer(t, func(c *Config) {
		c.STUNURLs = []string{"stun:stun.example.com:3478"}
		c.TURN.Enabled = true
		c.TURN.ListenAddr = "127.0.0.1:0"
		c.TURN.PublicIP = "127.0.0.1"
		c.TURN.RelayPortMin, c.TURN.RelayPortMax = 40000, 40100
		c.TURNCredentialTTL = time.Hour
		c.TURN.StaticUsers = map[string]string{"kpoint": "kpoint01"}
		c.Now = clockNow
	})

	a := dial(t, ts, "1", "/signal")
	ex := a.join("r-4", true, true)
	servers := ex["iceServers"].([]any)
	if len(servers) != 2 {
		t.Fatalf("iceServers %v", servers)
	}

	req, _ := http.NewRequest("GET", ts.http.URL+"/video/ice-servers?roomId=r-4&userId=1", nil)
	req.Header.Set("Authorization", "Bearer tok-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ICEServers []ICEServer `json:"iceServers"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(body.ICEServers) != 2 {
		t.Fatalf("ice-servers: %d %v %+v", resp.StatusCode, err, body)
	}
	turnServer := body.ICEServers[1]
	if !strings.HasPrefix(turnServer.URLs[0], "turn:127.0.0.1:") || !strings.HasSuffix(turnServer.Username, ":1") {
		t.Fatalf("turn entry %+v", turnServer)
	}

	for _, bad := range []struct {
		token, room string
		status      int
	}{{"forged", "r-4", 401}, {"tok-1", "r-forbidden", 403}} {
		req, _ := http.NewRequest("GET", ts.http.URL+"/video/ice-servers?userId=1&roomId="+bad.room, nil)
		req.Header.Set("Authorization", "Bearer "+bad.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != bad.status {
			t.Errorf("%s/%s: status %d, want %d", bad.token, bad.room, resp.StatusCode, bad.status)
		}
	}

	turnAddr := strings.TrimSuffix(strings.TrimPrefix(turnServer.URLs[0], "turn:"), "?transport=udp")
	allocate := func(username, password string) error {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: turnAddr, TURNServerAddr: turnAddr,
			Conn: conn, Username: username, Password: password, Realm: "cstalk", RTO: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := c.Allocate()
		if err != nil {
			return err
		}
		return relay.Close()
	}
	if err := allocate(turnServer.Username, turnServer.Credential); err != nil {
		t.Fatalf("allocation with handed-out credentials: %v", err)
	}
	if err := allocate(turnServer.Username, "wrong"); err == nil {
		t.Error("allocation with a wrong password succeeded")
	}
	if err := allocate(turnServer.Username+"x", turnServer.Credential); err == nil {
		t.Error("allocation with a changed username succeeded")
	}
	// A static user, as the deployed KnowledgeTalk client keeps one.
	if err := allocate("kpoint", "kpoint01"); err != nil {
		t.Fatalf("allocation as a static user: %v", err)
	}
	if err := allocate("kpoint", "kpoint02"); err == nil {
		t.Error("allocation as a static user with a wrong password succeeded")
	}
	offset.Store(int64(2 * time.Hour))
	if err := allocate(turnServer.Username, turnServer.Credential); err == nil {
		t.Error("allocation with expired credentials succeeded")
	}
	if err := allocate("kpoint", "kpoint01"); err != nil {
		t.Errorf("static users never expire: %v", err)
	}
}

func TestTURNUsernameExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	if !turnUsernameValid("1800000000:7", now) || turnUsernameValid("1799999999:7", now) || turnUsernameValid("x:7", now) {
		t.Fatal("expiry check wrong")
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.VideoCodec = "AV2"
	cfg.UDPPortMin = 10
	cfg.TURN.Enabled = true
	cfg.TURN.StaticUsers = map[string]string{"a:b": "x"}
	err := cfg.validate()
	for _, want := range []string{"video codec", "udp port range", "public ip", "static user"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}
