package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// The REST side of routing, reply templates, transcripts and the team
// figures. Every call is scoped to the caller's company: another company's
// member, template or room reads as not found.

// counselingBodyMax bounds the JSON bodies of these calls: a template's
// text (4,000 characters, up to 16 KB in UTF-8) is the largest.
const counselingBodyMax = 32 << 10

// counselingRoutes adds the members' calls to the API.
func (a *api) counselingRoutes(route func(method, path string, h http.HandlerFunc)) {
	route(http.MethodPut, "/api/me/status", a.setStatus)
	route(http.MethodGet, "/api/members", a.memberStates)
	route(http.MethodGet, "/api/canned-responses", a.cannedList)
	// Members read the templates, administrators write them.
	route(http.MethodPost, "/api/canned-responses", a.admin(a.cannedCreate))
	route(http.MethodPut, "/api/canned-responses/{id}", a.admin(a.cannedUpdate))
	route(http.MethodDelete, "/api/canned-responses/{id}", a.admin(a.cannedDelete))
	route(http.MethodGet, "/api/rooms/{id}/transcript", a.transcript)
}

// counselingAdminRoutes adds the administrators' calls.
func (a *api) counselingAdminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /api/admin/members/{id}", a.admin(a.setCapacity))
	mux.HandleFunc("GET /api/admin/settings", a.admin(a.settings))
	mux.HandleFunc("PUT /api/admin/settings", a.admin(a.setSettings))
	mux.HandleFunc("GET /api/admin/stats", a.admin(a.stats))
}

// refusal is how an API call answers an error of the domain.
type refusal struct {
	err    error
	status int
	key    string
}

// answer writes v with status when err is nil, the first matching refusal
// when err is one, and a bare 500 otherwise.
func (a *api) answer(w http.ResponseWriter, r *http.Request, doing string, err error, status int, v any, refusals ...refusal) {
	if err == nil {
		a.writeJSON(w, status, v)
		return
	}
	for _, ref := range refusals {
		if errors.Is(err, ref.err) {
			a.fail(w, r, ref.status, ref.key)
			return
		}
	}
	a.internal(w, r, doing, err)
}

// decodeBody reads a JSON body of at most counselingBodyMax into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	return json.NewDecoder(http.MaxBytesReader(w, r.Body, counselingBodyMax)).Decode(v)
}

// meJSON is the caller as GET /api/me shows it, with what it chose.
type meJSON struct {
	apiProfile
	Status   MemberStatus `json:"status"`
	Capacity int          `json:"capacity"`
}

func (a *api) setStatus(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	var body struct {
		Status string `json:"status"`
	}
	status, ok := MemberStatus(""), false
	if decodeBody(w, r, &body) == nil {
		status, ok = ParseMemberStatus(body.Status)
	}
	if !ok {
		a.fail(w, r, http.StatusBadRequest, "api_bad_status_value")
		return
	}
	updated, err := a.s.SetMemberStatus(r.Context(), m, status)
	if err != nil {
		a.internal(w, r, "set status", err)
		return
	}
	a.writeMe(w, r, updated)
}

func (a *api) writeMe(w http.ResponseWriter, r *http.Request, m *Member) {
	profile, err := a.profileJSON(r.Context(), m)
	if err != nil {
		a.internal(w, r, "profile", err)
		return
	}
	status := m.Status
	if status == "" {
		status = MemberOffline
	}
	a.writeJSON(w, http.StatusOK, meJSON{apiProfile: profile, Status: status, Capacity: m.Capacity})
}

func (a *api) memberStates(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	states, err := a.s.MemberStates(r.Context(), m.CompanyID)
	if err != nil {
		a.internal(w, r, "member states", err)
		return
	}
	a.writeJSON(w, http.StatusOK, map[string]any{"members": states})
}

func (a *api) cannedList(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	list, err := a.s.CannedResponses(r.Context(), m)
	if err != nil {
		a.internal(w, r, "canned responses", err)
		return
	}
	a.writeJSON(w, http.StatusOK, map[string]any{"cannedResponses": list})
}

func (a *api) cannedCreate(w http.ResponseWriter, r *http.Request, m *Member) {
	a.saveCanned(w, r, m, 0, http.StatusCreated)
}

// cannedID is the template ID of the path, or 0 when it has answered 404.
func (a *api) cannedID(w http.ResponseWriter, r *http.Request) int64 {
	id, ok := positiveID(r.PathValue("id"))
	if !ok {
		a.fail(w, r, http.StatusNotFound, "api_canned_not_found")
		return 0
	}
	return id
}

func (a *api) cannedUpdate(w http.ResponseWriter, r *http.Request, m *Member) {
	if id := a.cannedID(w, r); id != 0 {
		a.saveCanned(w, r, m, id, http.StatusOK)
	}
}

func (a *api) saveCanned(w http.ResponseWriter, r *http.Request, m *Member, id int64, status int) {
	var body struct {
		Shortcut string `json:"shortcut"`
		Title    string `json:"title"`
		Text     string `json:"text"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		a.fail(w, r, http.StatusBadRequest, "api_canned_body")
		return
	}
	saved, err := a.s.SaveCannedResponse(r.Context(), m, CannedResponse{ID: id, Shortcut: body.Shortcut, Title: body.Title, Text: body.Text})
	a.answer(w, r, "save canned response", err, status, saved,
		refusal{ErrInvalidCanned, http.StatusBadRequest, "api_canned_body"},
		refusal{ErrConflict, http.StatusConflict, "api_canned_taken"},
		refusal{ErrCannedFull, http.StatusConflict, "api_canned_full"},
		refusal{ErrNotFound, http.StatusNotFound, "api_canned_not_found"})
}

func (a *api) cannedDelete(w http.ResponseWriter, r *http.Request, m *Member) {
	id := a.cannedID(w, r)
	if id == 0 {
		return
	}
	if err := a.s.DeleteCannedResponse(r.Context(), m, id); err != nil {
		a.answer(w, r, "delete canned response", err, 0, nil, refusal{ErrNotFound, http.StatusNotFound, "api_canned_not_found"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) transcript(w http.ResponseWriter, r *http.Request) {
	m, room := a.roomOfMember(w, r)
	if room == nil {
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	switch format {
	case "":
		format = TranscriptText
	case TranscriptText, TranscriptHTML:
	default:
		a.fail(w, r, http.StatusBadRequest, "api_bad_format")
		return
	}
	notes := q.Get("includeNotes") == "1"
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if format == TranscriptHTML {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", TranscriptCSP)
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="room-%d.%s"`, room.ID, map[string]string{TranscriptText: "txt", TranscriptHTML: "html"}[format]))
	sw := &startedWriter{ResponseWriter: w}
	if err := a.s.WriteTranscript(r.Context(), sw, room, format, notes, LangFrom(r.Header.Get("Accept-Language"))); err != nil {
		if !sw.started {
			h.Del("Content-Disposition")
			h.Del("Content-Security-Policy")
			a.internal(w, r, "transcript", err)
			return
		}
		// Half a transcript must not pass for a whole one: cut the answer.
		a.log.Error("transcript cut short", "room", room.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
	a.log.Info("transcript", "room", room.ID, "member", m.ID, "format", format, "notes", notes)
}

// startedWriter notes whether anything was written yet.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(b []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(b)
}

func (a *api) setCapacity(w http.ResponseWriter, r *http.Request, admin *Member) {
	id, ok := positiveID(r.PathValue("id"))
	if !ok {
		a.fail(w, r, http.StatusNotFound, "api_member_not_found")
		return
	}
	var body struct {
		Capacity *int `json:"capacity"`
	}
	if err := decodeBody(w, r, &body); err != nil || body.Capacity == nil || *body.Capacity < 0 || *body.Capacity > MaxCapacity {
		a.fail(w, r, http.StatusBadRequest, "api_bad_capacity")
		return
	}
	state, err := a.s.SetMemberCapacity(r.Context(), admin, id, *body.Capacity)
	a.answer(w, r, "set capacity", err, http.StatusOK, state, refusal{ErrNotFound, http.StatusNotFound, "api_member_not_found"})
}

// settingsJSON are a company's settings an administrator changes here.
// RecordCalls is whether calls are recorded now; RecordCallsChoice is the
// company's own choice (null: the server's default applies).
type settingsJSON struct {
	AutoAssign        bool  `json:"autoAssign"`
	RecordCalls       bool  `json:"recordCalls"`
	RecordCallsChoice *bool `json:"recordCallsChoice"`
}

func (a *api) settings(w http.ResponseWriter, r *http.Request, admin *Member) {
	c, err := a.s.store.Company(r.Context(), admin.CompanyID)
	if err != nil {
		a.internal(w, r, "company", err)
		return
	}
	a.writeJSON(w, http.StatusOK, settingsJSON{AutoAssign: c.AutoAssign, RecordCalls: a.s.recordsCalls(c), RecordCallsChoice: c.RecordCalls})
}

// setSettings changes the settings the body names: autoAssign (true or
// false), recordCalls (true, false, or null for the server's default).
func (a *api) setSettings(w http.ResponseWriter, r *http.Request, admin *Member) {
	var body map[string]json.RawMessage
	var autoAssign, recordCalls *bool
	bad := decodeBody(w, r, &body) != nil || len(body) == 0
	for k, v := range body {
		switch k {
		case "autoAssign":
			bad = bad || json.Unmarshal(v, &autoAssign) != nil || autoAssign == nil
		case "recordCalls":
			bad = bad || json.Unmarshal(v, &recordCalls) != nil
		default:
			bad = true
		}
	}
	if bad {
		a.fail(w, r, http.StatusBadRequest, "api_bad_settings")
		return
	}
	if autoAssign != nil {
		if err := a.s.SetAutoAssign(r.Context(), admin, *autoAssign); err != nil {
			a.internal(w, r, "set settings", err)
			return
		}
	}
	if _, ok := body["recordCalls"]; ok {
		if err := a.s.SetRecordCalls(r.Context(), admin, recordCalls); err != nil {
			a.internal(w, r, "set settings", err)
			return
		}
	}
	a.settings(w, r, admin)
}

func (a *api) stats(w http.ResponseWriter, r *http.Request, admin *Member) {
	q := r.URL.Query()
	first, last, err := a.s.ParsePeriod(q.Get("from"), q.Get("to"))
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, "api_bad_period")
		return
	}
	st, err := a.s.Stats(r.Context(), admin, first, last)
	if err != nil {
		a.internal(w, r, "stats", err)
		return
	}
	a.writeJSON(w, http.StatusOK, st)
}
