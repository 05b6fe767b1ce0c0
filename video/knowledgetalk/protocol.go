package knowledgetalk

import (
	"encoding/json"
	"strconv"

	"github.com/cstalk/cstalk/video"
)

// event is the one socket.io event name of the protocol, both ways.
const event = "knowledgetalk"

// Operations (eventOp or signalOp).
const (
	opCreateRoom   = "CreateRoom"
	opDestroyRoom  = "DestroyRoom"
	opRoomJoin     = "RoomJoin"
	opStartSession = "StartSession"
	opSDP          = "SDP"
	opCandidate    = "Candidate"
	opReceiveFeed  = "ReceiveFeed"
	opSendFeed     = "SendFeed"
	opPresence     = "Presence"
	opReserve      = "SessionReserve"
	opReserveEnd   = "SessionReserveEnd"
	opScreenEnd    = "ScreenShareConferenceEnd"
	opScreenEndSvr = "ScreenShareConferenceEndSvr"
	opKeepAlive    = "KeepAlive"
	opExitRoom     = "ExitRoom"
	opSetVideo     = "SetVideo"
	opSetAudio     = "SetAudio"
	opChangeName   = "ChangeName"
	opChat         = "Chat"
)

// Response codes of the seed, always sent as strings.
const (
	codeOK             = "200"
	codeBadRequest     = "400"
	codeUnauthorized   = "401"
	codeNoData         = "403"
	codePermission     = "413"
	codeMissing        = "421"
	codeInvalid        = "422"
	codeShareTaken     = "440"
	codeNoRoom         = "441"
	codeAlreadyInRoom  = "442"
	codeOverLimit      = "445"
	codeServerError    = "500"
	codeTimeout        = "504"
	codeMediaServer    = "570"
	codeRoomJoinAbsent = codeBadRequest // RoomJoin of an unknown room: the client's "expired" dialog
)

// codeText is the message of a code: the seed's Korean text, or English.
func codeText(code, lang string) string {
	ko, en := "알려지지 않은 오류 입니다.", "Unknown error."
	switch code {
	case codeOK:
		return "OK"
	case codeBadRequest:
		ko, en = "클라이언트의 잘못된 요청으로 처리할 수 없습니다.", "Client request error."
	case codeUnauthorized:
		ko, en = "클라이언트 인증에 실패 하였습니다.", "Client authentication failed."
	case codeNoData:
		ko, en = "데이터가 없습니다.", "No data."
	case codePermission:
		ko, en = "사용자 권한 오류입니다.", "User permission error."
	case codeMissing:
		ko, en = "매개변수가 전달되지 않았습니다.", "A parameter is missing."
	case codeInvalid:
		ko, en = "요청 형식이나 매개변수가 유효하지 않습니다.", "The request or a parameter is invalid."
	case codeShareTaken:
		ko, en = "이미 다른 사용자가 공유를 진행 중입니다.", "Sharing is already reserved."
	case codeNoRoom:
		ko, en = "요청에 맞는 방이 없습니다.", "No room for the request."
	case codeAlreadyInRoom:
		ko, en = "이미 동일한 유저가 방에 입장했습니다.", "This connection is already in a room."
	case codeOverLimit:
		ko, en = "데이터가 최대치를 초과 하였습니다.", "Over the limit."
	case codeServerError:
		ko, en = "서버에서 오류가 발생 하였습니다.", "Internal server error."
	case codeTimeout:
		ko, en = "서버 응답 시간이 초과하였습니다.", "Server timeout."
	case codeMediaServer:
		ko, en = "Media 서버에서 오류가 발생하였습니다.", "Media server error."
	}
	if lang == "en" {
		return en
	}
	return ko
}

// flexString reads a JSON string or number as a string: the client sends
// the ids it was given back verbatim, numbers included.
type flexString = video.FlexString

// idOf reads f as a positive integer id (0 when it is not one).
func idOf(f flexString) uint64 {
	n, err := strconv.ParseUint(string(f), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// request is every field a client message may carry; which matter depends
// on the op. Pointers tell absent from empty.
type request struct {
	EventOp  string          `json:"eventOp"`
	SignalOp string          `json:"signalOp"`
	CPCode   string          `json:"cpCode"`
	AuthKey  string          `json:"authKey"`
	Code     json.RawMessage `json:"code"`
	ReqNo    json.RawMessage `json:"reqNo"`
	RoomID   flexString      `json:"roomId"`
	Capacity *int            `json:"capacity"`
	SDP      *sdpField       `json:"sdp"`
	Usage    string          `json:"usage"`
	PluginID flexString      `json:"pluginId"`
	Host     *bool           `json:"host"`
	FeedID   flexString      `json:"feedId"`
	Display  string          `json:"display"`
	Status   *bool           `json:"status"`
	Name     *string         `json:"name"`
	Message  json.RawMessage `json:"message"`
}

type sdpField struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// op is what the message asks: eventOp, else signalOp (as the real server
// and client dispatch).
func (r *request) op() string {
	if r.EventOp != "" {
		return r.EventOp
	}
	return r.SignalOp
}

// opKey is the field the op came in, echoed in the answer.
func (r *request) opKey() string {
	if r.EventOp == "" && r.SignalOp != "" {
		return "signalOp"
	}
	return "eventOp"
}

// isAck reports a client acknowledgement ({eventOp, code: "200"}): it
// carries a code, which no request does.
func (r *request) isAck() bool { return len(r.Code) > 0 && string(r.Code) != "null" }

// obj is an outbound message.
type obj = map[string]any
