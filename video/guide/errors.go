package guide

import (
	"net/http"

	"github.com/cstalk/cstalk/chat"
)

// Error is a refusal a client can act on: an HTTP status and a stable key
// (the "reason" of the answer), with a text in each language.
type Error struct {
	Status int
	Key    string
}

func (e *Error) Error() string { return "guide: " + e.Key }

func refuse(status int, key string) *Error { return &Error{Status: status, Key: key} }

// The refusals of the service.
var (
	errBadRequest     = refuse(http.StatusBadRequest, "badRequest")
	errBadStars       = refuse(http.StatusBadRequest, "badStars")
	errUnauthorized   = refuse(http.StatusUnauthorized, "unauthorized")
	errBadLogin       = refuse(http.StatusUnauthorized, "badLogin")
	errNoTicket       = refuse(http.StatusPaymentRequired, "noTicket")
	errUsersOnly      = refuse(http.StatusForbidden, "usersOnly")
	errMatesOnly      = refuse(http.StatusForbidden, "matesOnly")
	errSessionUnknown = refuse(http.StatusNotFound, "sessionNotFound")
	errHistoryUnknown = refuse(http.StatusNotFound, "historyNotFound")
	errNotFriend      = refuse(http.StatusNotFound, "notFriend")
	errNoMate         = refuse(http.StatusNotFound, "noMateAvailable")
	errMateBusy       = refuse(http.StatusConflict, "mateBusy")
	errMateOffline    = refuse(http.StatusConflict, "mateOffline")
	errInGuide        = refuse(http.StatusConflict, "alreadyInGuide")
	errRequestClosed  = refuse(http.StatusConflict, "requestClosed")
	errNotApproved    = refuse(http.StatusConflict, "notApproved")
	errNotActive      = refuse(http.StatusConflict, "notActive")
	errNotCompleted   = refuse(http.StatusConflict, "notCompleted")
	errEvaluated      = refuse(http.StatusConflict, "alreadyEvaluated")
	errLoginTaken     = refuse(http.StatusConflict, "loginTaken")
	errClosed         = refuse(http.StatusServiceUnavailable, "shuttingDown")
	errUnavailable    = refuse(http.StatusServiceUnavailable, "unavailable")
	errLoginThrottled = refuse(http.StatusTooManyRequests, "tooManyLogins")
)

// text is one user-visible string in Korean and English; which one a client
// gets is chosen by chat.LangFrom, as everywhere in cstalk.
type text struct{ ko, en string }

// textIn returns the text of key (a refusal key, an event type or an
// answer) in lang; an unknown key is shown as itself so it is noticed.
func textIn(lang chat.Lang, key string) string {
	t, ok := texts[key]
	if !ok {
		return key
	}
	if lang == chat.English {
		return t.en
	}
	return t.ko
}

var texts = map[string]text{
	"ok":               {"성공", "OK"},
	"badRequest":       {"요청 형식이 올바르지 않습니다.", "The request is malformed."},
	"badStars":         {"별점은 1에서 5 사이여야 합니다.", "Stars must be between 1 and 5."},
	"unauthorized":     {"로그인이 필요합니다.", "Please log in."},
	"badLogin":         {"아이디 또는 비밀번호가 올바르지 않습니다.", "Wrong login name or password."},
	"tooManyLogins":    {"로그인 시도가 너무 많습니다. 잠시 후 다시 시도해 주세요.", "Too many login attempts. Please try again later."},
	"unavailable":      {"서버가 잠시 응답할 수 없습니다. 잠시 후 다시 시도해 주세요.", "The server cannot answer right now. Please try again shortly."},
	"noTicket":         {"남은 티켓이 없습니다.", "You have no ticket left."},
	"usersOnly":        {"가이드를 받는 사용자만 할 수 있습니다.", "Only users receiving guides can do this."},
	"matesOnly":        {"메이트만 할 수 있습니다.", "Only mates can do this."},
	"sessionNotFound":  {"가이드 세션을 찾을 수 없습니다.", "Guide session not found."},
	"historyNotFound":  {"가이드 기록을 찾을 수 없습니다.", "Guide history not found."},
	"notFriend":        {"친구로 등록된 메이트가 아닙니다.", "This mate is not your friend."},
	"noMateAvailable":  {"지금 연결할 수 있는 메이트가 없습니다.", "No mate is available now."},
	"mateBusy":         {"메이트가 통화 중입니다.", "The mate is busy in another guide."},
	"mateOffline":      {"메이트가 오프라인입니다.", "The mate is offline."},
	"alreadyInGuide":   {"이미 진행 중인 가이드가 있습니다.", "You already have a guide in progress."},
	"requestClosed":    {"이미 종료된 요청입니다.", "This request is no longer open."},
	"notApproved":      {"승인된 가이드가 아닙니다.", "The guide has not been approved."},
	"notActive":        {"진행 중인 가이드가 아닙니다.", "The guide is not in progress."},
	"notCompleted":     {"가이드가 아직 완료되지 않았습니다.", "The guide is not completed yet."},
	"alreadyEvaluated": {"이미 평가한 가이드입니다.", "This guide was already rated."},
	"loginTaken":       {"이미 사용 중인 아이디입니다.", "This login name is taken."},
	"shuttingDown":     {"서버가 종료 중입니다.", "The server is shutting down."},
	"serverError":      {"서버 오류가 발생했습니다.", "Server error."},
	"notFoundRoute":    {"없는 API입니다.", "No such API."},
	"methodNotAllowed": {"허용되지 않는 메서드입니다.", "Method not allowed."},
	"tooLarge":         {"요청 본문이 너무 큽니다.", "The request body is too large."},

	EventRequest:   {"가이드 요청이 도착했습니다.", "A user asks for a guide."},
	EventApproved:  {"메이트가 가이드를 승인했습니다.", "The mate accepted the guide."},
	EventRejected:  {"메이트가 가이드를 거절했습니다.", "The mate declined the guide."},
	EventTimeout:   {"메이트가 응답하지 않았습니다.", "The mate did not answer in time."},
	EventCancelled: {"가이드 요청이 취소되었습니다.", "The guide request was withdrawn."},
	EventBegun:     {"가이드가 시작되었습니다.", "The guide has started."},
	EventWarning:   {"가이드 시간이 곧 끝납니다. 티켓으로 연장할 수 있습니다.", "The guide time is about to run out; a ticket extends it."},
	EventExtended:  {"티켓을 사용해 가이드 시간이 연장되었습니다.", "The guide was extended with a ticket."},
	EventEnded:     {"가이드가 종료되었습니다.", "The guide has ended."},
}
