package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/cstalk/cstalk/broker"
)

// reasonError is a refusal the client is told about: key names a text of the
// catalog (a format when args are given). Everything else that goes wrong is
// logged and reported as "internal", so no Go error string reaches a client.
type reasonError struct {
	key  string
	args []any
	// notDone: the event was refused before it took effect and may be
	// sent again later, so no receipt may say it was handled.
	notDone bool
}

func reason(key string, args ...any) error { return &reasonError{key: key, args: args} }

// errRateLimited refuses an event past the connection's allowance; the
// client may send it again (no receipt).
var errRateLimited = &reasonError{key: "rate_limited", notDone: true}

func isReason(err error) bool {
	var re *reasonError
	return errors.As(err, &re)
}

func (e *reasonError) Error() string { return "chat: refused: " + e.key }

func (e *reasonError) text(l Lang) string {
	if len(e.args) == 0 {
		return l.T(e.key)
	}
	return fmt.Sprintf(l.T(e.key), e.args...)
}

// reasonFor turns err into what the client is told, logging internal errors.
func (s *Service) reasonFor(sessionID string, err error) *reasonError {
	var re *reasonError
	if errors.As(err, &re) {
		s.log.Debug("refused", "session", sessionID, "reason", re.key)
		return re
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("request failed: a deadline passed", "session", sessionID, "err", err)
		return &reasonError{key: "unavailable"}
	}
	s.log.Error("request failed", "session", sessionID, "err", err)
	return &reasonError{key: "internal"}
}

// refuse tells the client why and returns the error for the broker: wrapping
// broker.ErrHandled when an ERROR event reached the private destination (the
// connection stays), else an error whose text becomes an ERROR frame.
func (s *Service) refuse(ctx context.Context, sessionID string, p *principal, roomID int64, err error) error {
	re := s.reasonFor(sessionID, err)
	if p.hasPrivate() {
		if sendErr := s.sendError(ctx, sessionID, p, roomID, re.text(p.lang)); sendErr == nil {
			return fmt.Errorf("chat: %s: %w", re.key, broker.ErrHandled)
		} else {
			s.log.Warn("error event not delivered", "session", sessionID, "err", sendErr)
		}
	}
	return connErr(re.text(p.lang))
}

// report is refuse for hooks that cannot refuse (Subscribed).
func (s *Service) report(ctx context.Context, sessionID string, p *principal, roomID int64, err error) {
	re := s.reasonFor(sessionID, err)
	if !p.hasPrivate() {
		return
	}
	if sendErr := s.sendError(ctx, sessionID, p, roomID, re.text(p.lang)); sendErr != nil {
		s.log.Warn("error event not delivered", "session", sessionID, "err", sendErr)
	}
}

func (s *Service) sendError(ctx context.Context, sessionID string, p *principal, roomID int64, text string) error {
	env := &Envelope{EventName: EventError, Data: map[string]any{"reason": text}, SessionID: sessionID}
	if p.company != nil {
		env.CompanyID = idString(p.company.ID)
	}
	if roomID != 0 {
		env.RoomID = idPtr(roomID)
	}
	return s.sendPrivate(ctx, sessionID, env)
}

// AuthorizeSend implements broker.Application: nobody SENDs straight to a
// broker destination, since that would inject events other clients trust.
func (s *Service) AuthorizeSend(ctx context.Context, c *broker.Conn, destination string, _ broker.Header) error {
	p := principalOf(c)
	if p == nil {
		return errors.New("unauthorized")
	}
	return s.refuse(ctx, c.ID(), p, 0, reason("send_forbidden"))
}

// HandleSend implements broker.Application for pub/socket/message.
func (s *Service) HandleSend(ctx context.Context, c *broker.Conn, destination string, headers broker.Header, body []byte) error {
	p := principalOf(c)
	if p == nil {
		return errors.New("unauthorized")
	}
	return s.handleSend(ctx, c.ID(), p, destination, headers.Get, body)
}

func (s *Service) handleSend(ctx context.Context, sessionID string, p *principal, destination string, header func(string) string, body []byte) error {
	req := &request{svc: s, sessionID: sessionID, p: p, header: header}
	err := s.dispatch(ctx, req, destination, body)
	if err == nil {
		return nil
	}
	roomID := p.currentRoom()
	if req.room != nil {
		roomID = req.room.ID
	}
	refused := s.refuse(ctx, sessionID, p, roomID, err)
	var re *reasonError
	if (!errors.As(err, &re) || re.notDone) && errors.Is(refused, broker.ErrHandled) {
		// The server failed (e.g. the store is unreachable), so the event
		// may not have taken effect: no receipt may say it did. A refusal
		// for a reason is still receipted: the client was told the outcome.
		// Retrying is safe: a MESSAGE's clientMessageId is stored once.
		// The same for an event refused for coming too fast.
		return fmt.Errorf("%w: %w", refused, broker.ErrNotDone)
	}
	return refused
}

// request is one client event being handled.
type request struct {
	svc       *Service
	sessionID string
	p         *principal
	header    func(string) string
	event     string
	bodyRoom  flexInt // top-level or data.roomId
	data      json.RawMessage
	message   *messageFields // a MESSAGE's data, when dispatch has read it
	room      *Room          // resolved target room
}

// inbound is the SEND body.
type inbound struct {
	EventName string          `json:"eventName"`
	RoomID    flexInt         `json:"roomId"`
	Data      json.RawMessage `json:"data"`
}

type handler func(ctx context.Context, r *request) error

func (s *Service) handlers() map[string]handler {
	h := map[string]handler{
		EventMessage:       s.handleMessage,
		EventMessageList:   s.handleMessageList,
		EventReadMessage:   s.handleReadMessage,
		EventDeleteMessage: s.handleDeleteMessage,
		EventEnd:           s.handleEnd,
		EventAssign:        s.handleAssign,
		EventRoomDetail:    s.handleRoomDetail,
		EventStartMessage:  s.handleStartMessage,
		EventReview:        s.handleReview,
		EventSaveHistory:   s.handleSaveHistory,
		EventLeave:         s.handleLeave,
		EventTransfer:      s.handleTransfer,
		EventTyping:        s.handleTyping,
	}
	for name, fn := range s.videoHandlers() {
		h[name] = fn
	}
	return h
}

func (s *Service) maxBodyBytes() int { return 16 * s.cfg.MaxMessageBytes }

// eventLimiter is a new connection's allowance of client events: a token
// bucket of Config.EventBurst refilled at Config.EventRate per second. A
// burst past it gets ERROR rate_limited for each event over; the
// connection stays.
func (s *Service) eventLimiter() *rate.Limiter {
	if s.cfg.EventRate <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(s.cfg.EventRate), s.cfg.EventBurst)
}

func (s *Service) dispatch(ctx context.Context, req *request, destination string, body []byte) error {
	if strings.TrimPrefix(destination, "/") != SendDestination {
		return reason("destination_forbidden")
	}
	if req.p.unauthorized {
		return reason("unauthorized")
	}
	if len(body) > s.maxBodyBytes() {
		return reason("body_too_large")
	}
	if !utf8.Valid(body) {
		return reason("invalid_utf8")
	}
	in, scanned := scanMessageEvent(body)
	if !scanned {
		if err := json.Unmarshal(body, &in.inbound); err != nil {
			return reason("malformed_json")
		}
	}
	if in.EventName == "" {
		return reason("missing_field", "eventName")
	}
	h, ok := s.events[in.EventName]
	if !ok {
		return reason("unknown_event", truncate(in.EventName, 40))
	}
	// TYPING has an allowance of its own and is dropped silently past it.
	if in.EventName != EventTyping && req.p.events != nil && !req.p.events.Allow() {
		return errRateLimited
	}
	if !scanned {
		data := bytes.TrimSpace(in.Data)
		if len(data) == 0 || bytes.Equal(data, []byte("null")) {
			data = []byte("{}")
		}
		if data[0] != '{' {
			return reason("invalid_field", "data")
		}
		var inData struct {
			RoomID flexInt `json:"roomId"`
		}
		if err := json.Unmarshal(data, &inData); err != nil {
			return fieldError(err)
		}
		in.Data, in.dataRoom = data, inData.RoomID
	}
	req.event, req.data, req.bodyRoom, req.message = in.EventName, in.Data, in.RoomID, in.message
	if in.dataRoom.set {
		req.bodyRoom = in.dataRoom
	}
	return h(ctx, req)
}

// targetRoom resolves and authorizes the room of the request: the roomId
// STOMP header, then roomId in the body, then the connection's last room.
func (r *request) targetRoom(ctx context.Context) (*Room, error) {
	if r.room != nil {
		return r.room, nil
	}
	id, err := r.targetRoomID()
	if err != nil {
		return nil, err
	}
	room, err := r.svc.usableRoom(ctx, r.p, id)
	if err != nil {
		return nil, err
	}
	r.room = room
	return room, nil
}

// targetRoomID is the ID targetRoom looks up, not yet authorized.
func (r *request) targetRoomID() (int64, error) {
	var id int64
	if h := strings.TrimSpace(r.header("roomId")); h != "" {
		v, ok := positiveID(h)
		if !ok {
			return 0, reason("invalid_field", "roomId")
		}
		id = v
	} else if r.bodyRoom.set {
		if r.bodyRoom.v <= 0 {
			return 0, reason("invalid_field", "roomId")
		}
		id = r.bodyRoom.v
	} else {
		id = r.p.currentRoom()
	}
	if id == 0 {
		return 0, reason("no_room")
	}
	return id, nil
}

// decode reads the event's data into v; wrong types become invalid_field.
func (r *request) decode(v any) error {
	if err := json.Unmarshal(r.data, v); err != nil {
		return fieldError(err)
	}
	return nil
}

func fieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return reason("invalid_field", truncate(te.Field, 40))
	}
	var fe *flexError
	if errors.As(err, &fe) {
		return reason("invalid_number")
	}
	return reason("malformed_json")
}

func truncate(v string, n int) string {
	if utf8.RuneCountInString(v) <= n {
		return v
	}
	return string([]rune(v)[:n]) + "…"
}

// flexInt is a JSON integer that deployed clients send either as a number or
// as a numeric string ("startId": "31"); null and "" leave it unset.
type flexInt struct {
	set bool
	v   int64
}

type flexError struct{ raw string }

func (e *flexError) Error() string { return "not an integer: " + e.raw }

func (f *flexInt) UnmarshalJSON(b []byte) error {
	raw := strings.TrimSpace(string(b))
	switch raw {
	case "null", `""`:
		*f = flexInt{}
		return nil
	case "true":
		*f = flexInt{set: true, v: 1}
		return nil
	case "false":
		*f = flexInt{set: true, v: 0}
		return nil
	}
	if strings.HasPrefix(raw, `"`) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return &flexError{raw: truncate(raw, 20)}
		}
		raw = strings.TrimSpace(s)
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		// 3.0 is still an integer.
		fl, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || fl != float64(int64(fl)) {
			return &flexError{raw: truncate(raw, 20)}
		}
		v = int64(fl)
	}
	*f = flexInt{set: true, v: v}
	return nil
}
