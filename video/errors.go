package video

import (
	"errors"
	"fmt"
)

// Error is what a client is told when a request fails: a stable code and a
// human message in the connection's language. Close says whether the
// connection ends after it.
type Error struct {
	Code  string
	Close bool
}

func (e *Error) Error() string { return "video: " + e.Code }

// Error codes sent in {"id":"error","code":...}.
const (
	CodeBadMessage          = "badMessage"
	CodeTooLarge            = "tooLarge"
	CodeUnknownMessage      = "unknownMessage"
	CodeUnauthorized        = "unauthorized"
	CodeForbidden           = "forbidden"
	CodeBadRoom             = "badRoom"
	CodeBadUser             = "badUser"
	CodeAlreadyJoined       = "alreadyJoined"
	CodeNotJoined           = "notJoined"
	CodeWrongRoom           = "wrongRoom"
	CodeUnknownParticipant  = "unknownParticipant"
	CodeBadSDP              = "badSdp"
	CodeBadCandidate        = "badCandidate"
	CodeTooManyCandidates   = "tooManyCandidates"
	CodeTooManySubscription = "tooManySubscriptions"
	CodeRoomFull            = "roomFull"
	CodeScreenShareTaken    = "screenShareTaken"
	CodeNoScreenShare       = "noScreenShare"
	CodeUnknownFeed         = "unknownFeed"
	CodeUnknownSubscription = "unknownSubscription"
	CodeTooManyPublishers   = "tooManyPublishers"
	CodeRateLimited         = "rateLimited"
	CodeJoinTimeout         = "joinTimeout"
	CodeReplaced            = "replaced"
	CodeRoomClosed          = "roomClosed"
	CodeShutdown            = "shutdown"
	CodeInternal            = "internal"
)

// ErrUnauthorized and ErrForbidden are what an Authorizer returns (wrapped
// or not) for a bad token and for a valid token that may not join.
var (
	ErrUnauthorized = errors.New("video: unauthorized")
	ErrForbidden    = errors.New("video: forbidden")
)

func clientError(code string) *Error { return &Error{Code: code} }
func fatalError(code string) *Error  { return &Error{Code: code, Close: true} }

// text returns the human message for code in lang ("ko" or "en").
func text(code, lang string) string {
	ko, en := texts(code)
	if lang == "en" {
		return en
	}
	return ko
}

func texts(code string) (ko, en string) {
	switch code {
	case CodeBadMessage:
		return "메시지 형식이 올바르지 않습니다.", "The message is not valid JSON of this protocol."
	case CodeTooLarge:
		return "메시지가 너무 큽니다.", "The message is too large."
	case CodeUnknownMessage:
		return "알 수 없는 메시지입니다.", "Unknown message id."
	case CodeUnauthorized:
		return "인증에 실패했습니다. 다시 로그인해 주세요.", "Authentication failed; please sign in again."
	case CodeForbidden:
		return "이 방에 들어갈 권한이 없습니다.", "You may not join this room."
	case CodeBadRoom:
		return "방 아이디가 올바르지 않습니다.", "The room id is not valid."
	case CodeBadUser:
		return "유저 아이디가 올바르지 않습니다.", "The user id is not valid."
	case CodeAlreadyJoined:
		return "이미 방에 접속해 있습니다.", "This connection has already joined a room."
	case CodeNotJoined:
		return "먼저 방에 접속해 주세요.", "Join a room first."
	case CodeWrongRoom:
		return "접속한 방에 대한 메시지가 아닙니다.", "The message is for a room this connection has not joined."
	case CodeUnknownParticipant:
		return "방에 없는 참여자입니다.", "No such participant in the room."
	case CodeBadSDP:
		return "SDP 정보가 올바르지 않습니다.", "The SDP offer is not valid."
	case CodeBadCandidate:
		return "ICE candidate 정보가 올바르지 않습니다.", "The ICE candidate is not valid."
	case CodeTooManyCandidates:
		return "ICE candidate가 너무 많습니다.", "Too many ICE candidates."
	case CodeTooManySubscription:
		return "받을 수 있는 영상 수를 넘었습니다.", "Too many subscriptions."
	case CodeRoomFull:
		return "방 인원이 가득 찼습니다.", "The room is full."
	case CodeScreenShareTaken:
		return "이미 다른 사용자가 화면을 공유하고 있습니다.", "Someone else is sharing a screen in this room."
	case CodeUnknownFeed:
		return "없는 영상입니다.", "No such feed in the room."
	case CodeUnknownSubscription:
		return "없는 수신 연결입니다.", "No such subscription."
	case CodeNoScreenShare:
		return "화면을 공유하고 있지 않은 참여자입니다.", "That participant is not sharing a screen."
	case CodeTooManyPublishers:
		return "영상을 보내는 참여자가 너무 많습니다.", "Too many participants are publishing in this room."
	case CodeRateLimited:
		return "요청이 너무 잦습니다. 잠시 후 다시 시도해 주세요.", "Too many requests; slow down."
	case CodeJoinTimeout:
		return "방 접속 요청이 없어 연결을 닫습니다.", "No joinRoom in time; closing."
	case CodeReplaced:
		return "다른 연결에서 같은 사용자로 접속했습니다.", "The same user joined from another connection."
	case CodeRoomClosed:
		return "방이 종료되었습니다.", "The room was closed."
	case CodeShutdown:
		return "서버가 종료됩니다. 잠시 후 다시 접속해 주세요.", "The server is shutting down; please reconnect shortly."
	default:
		return "서버 오류가 발생했습니다.", "Internal server error."
	}
}

// authError maps what an Authorizer returned to the client's error.
func authError(err error) *Error {
	switch {
	case errors.Is(err, ErrForbidden):
		return fatalError(CodeForbidden)
	case errors.Is(err, ErrUnauthorized):
		return fatalError(CodeUnauthorized)
	default:
		return fatalError(CodeInternal)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf("video: "+format, args...) }
