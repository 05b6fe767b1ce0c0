package video

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/turn/v2"
	"github.com/pion/webrtc/v3"
)

// codecFor returns the video codec named by Config.VideoCodec.
func codecFor(name string) (webrtc.RTPCodecParameters, error) {
	// transport-cc: publishers' congestion control runs on the TWCC
	// feedback the interceptors send; no REMB is generated.
	fb := []webrtc.RTCPFeedback{{Type: "transport-cc"}, {Type: "ccm", Parameter: "fir"},
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	switch strings.ToUpper(name) {
	case "VP8":
		return webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}}, nil
	case "VP9":
		return webrtc.RTPCodecParameters{PayloadType: 98, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: fb}}, nil
	case "H264":
		return webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}}, nil
	default:
		return webrtc.RTPCodecParameters{}, fmt.Errorf("video codec %q: want VP8, VP9 or H264", name)
	}
}

var opusCodec = webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
	MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}

// media is the pion side of the server: one API for every peer connection
// and the sockets it shares.
type media struct {
	api        *webrtc.API
	videoCodec webrtc.RTPCodecCapability
	udpMux     ice.UDPMux
	turn       *turn.Server
	turnPort   int // the embedded TURN server's bound port
}

func newMedia(cfg Config, log *slog.Logger) (_ *media, err error) {
	m := &media{}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	video, err := codecFor(cfg.VideoCodec)
	if err != nil {
		return nil, err
	}
	m.videoCodec = video.RTPCodecCapability

	engine := &webrtc.MediaEngine{}
	if err := engine.RegisterCodec(opusCodec, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, errorf("register opus: %w", err)
	}
	if err := engine.RegisterCodec(video, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, errorf("register %s: %w", cfg.VideoCodec, err)
	}
	// NACK generator and responder (retransmission both ways), sender and
	// receiver reports, and TWCC feedback to publishers so their
	// congestion control works.
	registry := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(engine, registry); err != nil {
		return nil, errorf("register interceptors: %w", err)
	}
	// The mid and rid header extensions let a publisher send simulcast
	// (one video track in several encodings).
	if err := webrtc.ConfigureSimulcastExtensionHeaders(engine); err != nil {
		return nil, errorf("register simulcast header extensions: %w", err)
	}

	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log}}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, 2*time.Second)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	var ifaceFilter func(string) bool
	if len(cfg.Interfaces) > 0 {
		ifaces := slices.Clone(cfg.Interfaces)
		ifaceFilter = func(name string) bool { return slices.Contains(ifaces, name) }
		se.SetInterfaceFilter(ifaceFilter)
	}
	if len(cfg.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	if cfg.UDPMuxPort > 0 {
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6)}
		if ifaceFilter != nil {
			opts = append(opts, ice.UDPMuxFromPortWithInterfaceFilter(ifaceFilter))
		}
		if cfg.IncludeLoopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPMuxPort, opts...)
		if err != nil {
			return nil, errorf("udp mux on port %d: %w", cfg.UDPMuxPort, err)
		}
		m.udpMux = mux
		se.SetICEUDPMux(mux)
	} else if cfg.UDPPortMin > 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, errorf("udp port range: %w", err)
		}
	}
	m.api = webrtc.NewAPI(webrtc.WithMediaEngine(engine), webrtc.WithInterceptorRegistry(registry), webrtc.WithSettingEngine(se))

	if cfg.TURN.Enabled {
		if m.turn, m.turnPort, err = startTURN(cfg, log); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *media) close() {
	if m.turn != nil {
		_ = m.turn.Close()
	}
	if m.udpMux != nil {
		_ = m.udpMux.Close()
	}
}

// startTURN runs the embedded TURN server with REST-style credentials
// (the scheme coturn calls use-auth-secret), so the same credentials work
// for it and for external TURN servers sharing the secret, and with the
// configured static users.
func startTURN(cfg Config, log *slog.Logger) (*turn.Server, int, error) {
	conn, err := net.ListenPacket("udp4", cfg.TURN.ListenAddr)
	if err != nil {
		return nil, 0, errorf("turn listen %s: %w", cfg.TURN.ListenAddr, err)
	}
	now := clock(cfg)
	secret := cfg.TURNSecret
	static := maps.Clone(cfg.TURN.StaticUsers)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.TURN.Realm,
		LoggerFactory: pionLogs{log},
		AuthHandler: func(username, realm string, src net.Addr) ([]byte, bool) {
			// A static user's name has no ':', so it can never pass for a
			// REST username "{expiry}:{userId}", nor the other way round.
			if password, ok := static[username]; ok {
				return turn.GenerateAuthKey(username, realm, password), true
			}
			if !turnUsernameValid(username, now()) {
				log.Debug("turn credentials refused", "username", username, "src", src.String())
				return nil, false
			}
			return turn.GenerateAuthKey(username, realm, turnPassword(secret, username)), true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorPortRange{
				RelayAddress: net.ParseIP(cfg.TURN.PublicIP),
				Address:      "0.0.0.0",
				MinPort:      cfg.TURN.RelayPortMin,
				MaxPort:      cfg.TURN.RelayPortMax,
			},
		}},
	})
	if err != nil {
		_ = conn.Close()
		return nil, 0, errorf("turn server: %w", err)
	}
	log.Info("embedded turn listening", "addr", conn.LocalAddr().String(), "public_ip", cfg.TURN.PublicIP)
	return srv, conn.LocalAddr().(*net.UDPAddr).Port, nil
}

// turnPassword is base64(HMAC-SHA1(secret, username)), the TURN REST API
// password.
func turnPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// turnUsernameValid checks the expiry in "{unix expiry}:{userId}".
func turnUsernameValid(username string, now time.Time) bool {
	expiry, _, _ := strings.Cut(username, ":")
	t, err := strconv.ParseInt(expiry, 10, 64)
	return err == nil && now.Unix() <= t
}

func clock(cfg Config) func() time.Time {
	if cfg.Now != nil {
		return cfg.Now
	}
	return time.Now
}

// iceServers returns what a client puts in RTCConfiguration.iceServers:
// STUN, external TURN and the embedded TURN, with credentials for userID
// valid for TURNCredentialTTL.
func (s *Server) iceServers(userID string) []ICEServer {
	out := []ICEServer{}
	if len(s.cfg.STUNURLs) > 0 {
		out = append(out, ICEServer{URLs: slices.Clone(s.cfg.STUNURLs)})
	}
	var turnURLs []string
	turnURLs = append(turnURLs, s.cfg.TURNURLs...)
	if s.cfg.TURN.Enabled {
		port := strconv.Itoa(s.media.turnPort)
		turnURLs = append(turnURLs, "turn:"+net.JoinHostPort(s.cfg.TURN.PublicIP, port)+"?transport=udp")
	}
	if len(turnURLs) > 0 {
		username := strconv.FormatInt(s.now().Add(s.cfg.TURNCredentialTTL).Unix(), 10) + ":" + userID
		out = append(out, ICEServer{URLs: turnURLs, Username: username, Credential: turnPassword(s.turnSecret, username)})
	}
	return out
}

// serveICEServers answers GET /video/ice-servers?roomId=&userId=&communityId=
// with {"iceServers":[...]}; the bearer token must be allowed in the room,
// so TURN credentials go only to those who could join.
func (s *Server) serveICEServers(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	q := r.URL.Query()
	lang := requestLanguage(r, s.cfg.Language)
	ctx, cancel := contextWithTimeout(r.Context(), s.cfg.AuthTimeout)
	defer cancel()
	id, err := s.auth.AuthorizeJoin(ctx, token, q.Get("userId"), q.Get("communityId"), q.Get("roomId"))
	if err != nil {
		e := authError(err)
		status := http.StatusInternalServerError
		switch e.Code {
		case CodeUnauthorized:
			status = http.StatusUnauthorized
		case CodeForbidden:
			status = http.StatusForbidden
		}
		writeJSON(w, status, map[string]any{"code": status, "message": text(e.Code, lang)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"iceServers": s.iceServers(id.UserID), "ttl": int(s.cfg.TURNCredentialTTL.Seconds())})
}
