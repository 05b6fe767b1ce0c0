package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// The administrator's part of the REST API, under /api/admin/: the company's
// counselors (list, add) and ending a room without a socket. Only members
// with isAdmin 1 may use it, and only for their own company.

// adminBodyMax is far more than a login name, password and name need.
const adminBodyMax = 4 << 10

// adminTexts are the errors only the admin endpoints give.
var adminTexts = map[string]text{
	"admin_forbidden": {"관리자만 사용할 수 있습니다.", "Only administrators may do this."},
	"admin_member_body": {
		"loginName(영문 소문자·숫자·'.'·'_'·'-' 3~32자), password(8자 이상), name(50자 이하)을 JSON으로 보내 주세요.",
		"Send JSON with loginName (3-32 of a-z, 0-9, '.', '_', '-'), password (at least 8 characters) and name (at most 50).",
	},
	"admin_login_taken": {"이미 사용 중인 아이디입니다.", "That login name is taken."},
}

// AdminAPIHandler serves /api/admin/; mount it on that prefix beside
// APIHandler.
func (s *Service) AdminAPIHandler() http.Handler {
	a := &api{s: s, log: s.log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/admin/members", a.admin(a.listMembers))
	mux.HandleFunc("POST /api/admin/members", a.admin(a.addMember))
	mux.HandleFunc("POST /api/admin/rooms/{id}/end", a.admin(a.endRoom))
	a.counselingAdminRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusNotFound, "api_not_found")
	})
	return mux
}

// admin authenticates the bearer token and lets only administrators through.
func (a *api) admin(next func(http.ResponseWriter, *http.Request, *Member)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := a.member(w, r)
		if m == nil {
			return
		}
		if !m.IsAdmin {
			a.log.Info("admin API refused", "memberId", m.ID, "path", r.URL.Path)
			a.failAdmin(w, r, http.StatusForbidden, "admin_forbidden")
			return
		}
		next(w, r, m)
	}
}

func (a *api) failAdmin(w http.ResponseWriter, r *http.Request, status int, key string) {
	t := adminTexts[key]
	msg := t.ko
	if LangFrom(r.Header.Get("Accept-Language")) == English {
		msg = t.en
	}
	a.writeJSON(w, status, apiError{Code: status, Message: msg})
}

func (a *api) listMembers(w http.ResponseWriter, r *http.Request, m *Member) {
	members, err := a.s.store.Members(r.Context(), m.CompanyID)
	if err != nil {
		a.internal(w, r, "list members", err)
		return
	}
	out := make([]apiMember, 0, len(members))
	for i := range members {
		out = append(out, memberJSON(&members[i]))
	}
	a.writeJSON(w, http.StatusOK, map[string]any{"members": out})
}

type addMemberRequest struct {
	LoginName string `json:"loginName"`
	Password  string `json:"password"`
	Name      string `json:"name"`
	IsAdmin   int    `json:"isAdmin"`
}

func (a *api) addMember(w http.ResponseWriter, r *http.Request, m *Member) {
	var req addMemberRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, adminBodyMax))
	if err := dec.Decode(&req); err != nil || (req.IsAdmin != 0 && req.IsAdmin != 1) {
		a.failAdmin(w, r, http.StatusBadRequest, "admin_member_body")
		return
	}
	added, err := a.s.AddMember(r.Context(), m.CompanyID, req.LoginName, req.Password, req.Name, req.IsAdmin == 1)
	switch {
	case errors.Is(err, ErrInvalidMember):
		a.log.Info("member refused", "by", m.ID, "err", err)
		a.failAdmin(w, r, http.StatusBadRequest, "admin_member_body")
		return
	case errors.Is(err, ErrConflict):
		a.failAdmin(w, r, http.StatusConflict, "admin_login_taken")
		return
	case err != nil:
		a.internal(w, r, "add member", err)
		return
	}
	a.log.Info("member added by admin", "by", m.ID, "memberId", added.ID, "companyId", added.CompanyID)
	a.writeJSON(w, http.StatusCreated, memberJSON(added))
}

// endRoom ends a room of the admin's company: the room gets END and
// ROOM_DETAIL and the lobby RELOAD, as when its counselor ends it. Ending an
// ended room changes nothing and answers the room as it is.
func (a *api) endRoom(w http.ResponseWriter, r *http.Request, m *Member) {
	room := a.memberRoom(w, r, m)
	if room == nil {
		return
	}
	if err := a.s.EndRoom(r.Context(), m, room.ID); err != nil {
		if errors.Is(err, ErrNotFound) {
			a.fail(w, r, http.StatusNotFound, "api_room_not_found")
			return
		}
		a.internal(w, r, "end room", fmt.Errorf("admin %d: %w", m.ID, err))
		return
	}
	ended, err := a.s.store.Room(r.Context(), room.ID)
	if err != nil {
		a.internal(w, r, "load room", err)
		return
	}
	p, err := a.s.RoomPayload(r.Context(), ended)
	if err != nil {
		a.internal(w, r, "room payload", err)
		return
	}
	a.writeJSON(w, http.StatusOK, p)
}
