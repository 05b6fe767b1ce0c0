package video

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Message ids of the signaling protocol (seed 002, Kurento's group call
// protocol with ids, tokens and mute state added).
const (
	msgJoinRoom         = "joinRoom"
	msgReceiveVideoFrom = "receiveVideoFrom"
	msgOnIceCandidate   = "onIceCandidate"
	msgLeaveRoom        = "leaveRoom"
	msgVideoStateFrom   = "videoStateFrom"
	msgAudioStateFrom   = "audioStateFrom"
	msgStopScreenShare  = "stopScreenShare"
	msgICERestartAnswer = "iceRestartAnswer"
	msgSelectLayer      = "selectLayer"

	msgExistingParticipants  = "existingParticipants"
	msgNewParticipantArrived = "newParticipantArrived"
	msgReceiveVideoAnswer    = "receiveVideoAnswer"
	msgIceCandidate          = "iceCandidate"
	msgParticipantLeft       = "participantLeft"
	msgVideoStateAnswer      = "videoStateAnswer"
	msgAudioStateAnswer      = "audioStateAnswer"
	msgScreenShareStarted    = "screenShareStarted"
	msgScreenShareStopped    = "screenShareStopped"
	msgICERestartOffer       = "iceRestartOffer"
	msgError                 = "error"
)

// flexString accepts a JSON string or number: the seed's ids are strings,
// but clients that keep ids as numbers send them bare.
type flexString string

// FlexString is flexString for the other front ends' messages.
type FlexString = flexString

func (f *flexString) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// flexBool accepts true/false and the strings "true"/"false" (the seed's
// tables type some flags as strings).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var v bool
	if err := json.Unmarshal(b, &v); err == nil {
		*f = flexBool(v)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f = flexBool(v)
	return nil
}

// inbound is every field any client message carries; which ones matter
// depends on id. Kurento's names (name, room, sender) sit beside seed 002's.
type inbound struct {
	ID          string     `json:"id"`
	Token       string     `json:"token"`
	UserID      flexString `json:"userId"`
	CommunityID flexString `json:"communityId"`
	RoomID      flexString `json:"roomId"`
	Video       *flexBool  `json:"video"`
	Audio       *flexBool  `json:"audio"`
	SDPOffer    string     `json:"sdpOffer"`
	// SDPAnswer is the client's answer to the server's iceRestartOffer.
	SDPAnswer string `json:"sdpAnswer"`
	// RID and MaxBitrate are a subscriber's choice of simulcast layer
	// (selectLayer): a rid or "" for automatic, a bound in bits/s.
	RID        string `json:"rid"`
	MaxBitrate int64  `json:"maxBitrate"`
	// Usage is "screen" for a screen share's publication, subscription
	// or candidate; absent (or "cam") for the camera.
	Usage     string         `json:"usage"`
	Candidate *candidateJSON `json:"candidate"`
	Name      flexString     `json:"name"`
	Room      flexString     `json:"room"`
	Sender    flexString     `json:"sender"`
	// Data is an app signal's payload (see isAppSignal), relayed as is.
	Data json.RawMessage `json:"data"`
}

// isAppSignal reports whether id names an app-to-app signal: "G" and four
// digits, like the guide flow's G0001 that the user's app sends the mate
// when the guide begins. The server relays them to the room's other
// participants without interpreting them.
func isAppSignal(id string) bool {
	if len(id) != 5 || id[0] != 'G' {
		return false
	}
	for _, c := range id[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// maxAppSignalData bounds an app signal's payload: it is a cue, not a
// channel for bulk data.
const maxAppSignalData = 4 << 10

// user returns the user id the message names, in either naming scheme.
func (m *inbound) user() string {
	switch {
	case m.UserID != "":
		return string(m.UserID)
	case m.Sender != "":
		return string(m.Sender)
	default:
		return string(m.Name)
	}
}

func (m *inbound) room() string {
	if m.RoomID != "" {
		return string(m.RoomID)
	}
	return string(m.Room)
}

// kurentoNames reports whether a joinRoom came from a client that knows only
// Kurento's names; such a client is answered with both name sets anyway.
func (m *inbound) kurentoNames() bool { return m.UserID == "" && m.Name != "" }

type candidateJSON struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex"`
}

// Member is one participant as clients see it. Name is for front ends
// that show one; seed 002's clients are sent none.
type Member struct {
	UserID string `json:"userId"`
	Name   string `json:"-"`
	Video  bool   `json:"video"`
	Audio  bool   `json:"audio"`
}

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Layout is the resolution policy for the room's current size (the table
// of knowledgetalk.md): clients cap their capture to it. While someone
// shares a screen, the sharer's camera drops to SharerCamera and the
// screen is captured at Screen.
type Layout struct {
	Participants int         `json:"participants"`
	MaxWidth     int         `json:"maxWidth"`
	MaxHeight    int         `json:"maxHeight"`
	MaxFPS       int         `json:"maxFps"`
	Screen       *Resolution `json:"screen,omitempty"`
	SharerCamera *Resolution `json:"sharerCamera,omitempty"`
}

// Resolution is a capture cap.
type Resolution struct {
	MaxWidth  int `json:"maxWidth"`
	MaxHeight int `json:"maxHeight"`
	MaxFPS    int `json:"maxFps"`
}

// layoutFor returns the policy for n participants, sharing when a screen
// is shared.
func layoutFor(n int, sharing bool) Layout {
	type row struct{ upTo, w, h, fps int }
	rows := [...]row{
		{2, 960, 540, 15}, {4, 640, 360, 12}, {6, 480, 270, 12}, {9, 320, 180, 12},
		{12, 320, 180, 10}, {16, 240, 135, 10}, {20, 160, 120, 10}, {25, 160, 120, 8},
	}
	l := Layout{Participants: n, MaxWidth: 120, MaxHeight: 80, MaxFPS: 8}
	for _, r := range rows {
		if n <= r.upTo {
			l = Layout{Participants: n, MaxWidth: r.w, MaxHeight: r.h, MaxFPS: r.fps}
			break
		}
	}
	if sharing {
		l.Screen = &Resolution{MaxWidth: 640, MaxHeight: 360, MaxFPS: 15}
		l.SharerCamera = &Resolution{MaxWidth: 120, MaxHeight: 80, MaxFPS: 8}
	}
	return l
}

// Outbound messages carry seed 002's names and Kurento's side by side.

type existingParticipantsMsg struct {
	ID         string      `json:"id"`
	Members    []Member    `json:"members"`
	Data       []string    `json:"data"`
	UserID     string      `json:"userId"`
	ICEServers []ICEServer `json:"iceServers"`
	Layout     Layout      `json:"layout"`
}

type newParticipantMsg struct {
	ID     string `json:"id"`
	Member Member `json:"member"`
	Name   string `json:"name"`
	Layout Layout `json:"layout"`
}

type answerMsg struct {
	ID        string `json:"id"`
	UserID    string `json:"userId"`
	Name      string `json:"name"`
	Usage     string `json:"usage,omitempty"`
	SDPAnswer string `json:"sdpAnswer"`
}

// restartOfferMsg is the server's ICE restart of the peer connection for
// userId's media (the client's own for its publication).
type restartOfferMsg struct {
	ID       string `json:"id"`
	UserID   string `json:"userId"`
	Name     string `json:"name"`
	Usage    string `json:"usage,omitempty"`
	SDPOffer string `json:"sdpOffer"`
}

type iceCandidateMsg struct {
	ID        string        `json:"id"`
	UserID    string        `json:"userId"`
	Name      string        `json:"name"`
	Usage     string        `json:"usage,omitempty"`
	Candidate candidateJSON `json:"candidate"`
}

// screenShareMsg says userId started or stopped sharing a screen.
type screenShareMsg struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
}

type participantLeftMsg struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
	Layout Layout `json:"layout"`
}

type videoStateMsg struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Video  bool   `json:"video"`
}

// appSignalMsg is a relayed app signal; userId is the sender.
type appSignalMsg struct {
	ID     string          `json:"id"`
	UserID string          `json:"userId"`
	Data   json.RawMessage `json:"data,omitempty"`
}

type audioStateMsg struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Audio  bool   `json:"audio"`
}

type errorMsg struct {
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Request is the id of the message that failed, when known.
	Request string `json:"request,omitempty"`
}
