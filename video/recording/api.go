package recording

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The administrators' API: GET /api/admin/recordings (newest first,
// ?before=id&limit=n), GET /api/admin/recordings/{id} and the media of one
// participant, GET /api/admin/recordings/{id}/files/{fileId} (video/webm,
// Range requests answered, so a <video> seeks). Only administrators of the
// recording's company get anything; another company's recording reads as
// missing.

// Admins says whose administrator a request comes from.
type Admins interface {
	// AdminCompany is the company of the request's administrator:
	// ErrUnauthorized without valid credentials, ErrForbidden for a member
	// who is not an administrator.
	AdminCompany(r *http.Request) (int64, error)
}

// AdminsFunc adapts a function to Admins.
type AdminsFunc func(r *http.Request) (int64, error)

func (f AdminsFunc) AdminCompany(r *http.Request) (int64, error) { return f(r) }

var (
	ErrUnauthorized = errors.New("no valid credentials")
	ErrForbidden    = errors.New("not an administrator")
)

// maxList bounds one page of the list.
const maxList = 100

type api struct {
	rec    *Recorder
	store  Store
	admins Admins
}

// Handler serves the API; mount it on the paths above.
func (r *Recorder) Handler(admins Admins) http.Handler {
	a := &api{rec: r, store: r.store, admins: admins}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/admin/recordings", a.list)
	mux.HandleFunc("GET /api/admin/recordings/{id}", a.one)
	mux.HandleFunc("GET /api/admin/recordings/{id}/files/{fileId}", a.media)
	return mux
}

// texts are the API's errors, the same words as the rest of /api/.
var texts = map[string][2]string{
	"unauthorized": {"인증이 필요합니다.", "Authentication required."},
	"forbidden":    {"관리자만 사용할 수 있습니다.", "Only administrators may do this."},
	"not_found":    {"녹화를 찾을 수 없습니다.", "No such recording."},
	"bad_request":  {"before와 limit은 양의 정수여야 합니다.", "before and limit must be positive integers."},
	"server_error": {"일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.", "A temporary error occurred. Please try again shortly."},
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, status int, key string) {
	t := texts[key]
	msg := t[0]
	if lang := strings.ToLower(strings.TrimSpace(r.Header.Get("Accept-Language"))); strings.HasPrefix(lang, "en") {
		msg = t[1]
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cstalk"`)
	}
	writeJSON(w, status, map[string]any{"code": status, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// company authenticates the administrator; 0 when it has answered.
func (a *api) company(w http.ResponseWriter, r *http.Request) int64 {
	id, err := a.admins.AdminCompany(r)
	switch {
	case errors.Is(err, ErrUnauthorized):
		a.fail(w, r, http.StatusUnauthorized, "unauthorized")
	case errors.Is(err, ErrForbidden):
		a.fail(w, r, http.StatusForbidden, "forbidden")
	case err != nil:
		a.rec.log.Error("recordings: who is asking", "err", err)
		a.fail(w, r, http.StatusInternalServerError, "server_error")
	case id <= 0:
		a.fail(w, r, http.StatusForbidden, "forbidden")
	default:
		return id
	}
	return 0
}

type fileJSON struct {
	ID         int64   `json:"id"`
	UserID     string  `json:"userId"`
	Name       string  `json:"name"`
	IsCustomer bool    `json:"isCustomer"`
	StartedAt  string  `json:"startedAt"`
	EndedAt    *string `json:"endedAt"`
	Seconds    float64 `json:"duration"`
	Bytes      int64   `json:"bytes"`
	Status     Status  `json:"status"`
	URL        string  `json:"url"`
}

type recordingJSON struct {
	ID             int64      `json:"id"`
	VideoRoomID    string     `json:"videoRoomId"`
	RoomID         *int64     `json:"roomId"`
	GuideSessionID *int64     `json:"guideSessionId"`
	StartedAt      string     `json:"startedAt"`
	EndedAt        *string    `json:"endedAt"`
	Participants   []fileJSON `json:"participants"`
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func stampPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := stamp(*t)
	return &s
}

func toJSON(rec Recording) recordingJSON {
	out := recordingJSON{ID: rec.ID, VideoRoomID: rec.VideoRoomID, RoomID: rec.ChatRoomID, GuideSessionID: rec.GuideSessionID,
		StartedAt: stamp(rec.StartedAt), EndedAt: stampPtr(rec.EndedAt), Participants: []fileJSON{}}
	for _, f := range rec.Files {
		if f.Status == StatusEmpty && f.Bytes == 0 {
			continue
		}
		out.Participants = append(out.Participants, fileJSON{ID: f.ID, UserID: f.UserID, Name: f.Name, IsCustomer: f.Customer,
			StartedAt: stamp(f.StartedAt), EndedAt: stampPtr(f.EndedAt), Seconds: f.Duration.Seconds(), Bytes: f.Bytes,
			Status: f.Status,
			URL:    "/api/admin/recordings/" + strconv.FormatInt(rec.ID, 10) + "/files/" + strconv.FormatInt(f.ID, 10)})
	}
	return out
}

func positive(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	company := a.company(w, r)
	if company == 0 {
		return
	}
	q := r.URL.Query()
	var before int64
	limit := 20
	if v := q.Get("before"); v != "" {
		n, ok := positive(v)
		if !ok {
			a.fail(w, r, http.StatusBadRequest, "bad_request")
			return
		}
		before = n
	}
	if v := q.Get("limit"); v != "" {
		n, ok := positive(v)
		if !ok {
			a.fail(w, r, http.StatusBadRequest, "bad_request")
			return
		}
		limit = int(min(n, maxList))
	}
	recs, err := a.store.Recordings(r.Context(), company, before, limit)
	if err != nil {
		a.rec.log.Error("list recordings", "err", err)
		a.fail(w, r, http.StatusInternalServerError, "server_error")
		return
	}
	out := make([]recordingJSON, 0, len(recs))
	for _, rec := range recs {
		out = append(out, toJSON(rec))
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out})
}

// find loads the path's recording of the administrator's company; nil
// when it has answered.
func (a *api) find(w http.ResponseWriter, r *http.Request) *Recording {
	company := a.company(w, r)
	if company == 0 {
		return nil
	}
	id, ok := positive(r.PathValue("id"))
	if !ok {
		a.fail(w, r, http.StatusNotFound, "not_found")
		return nil
	}
	rec, err := a.store.Recording(r.Context(), company, id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "not_found")
		return nil
	case err != nil:
		a.rec.log.Error("recording", "id", id, "err", err)
		a.fail(w, r, http.StatusInternalServerError, "server_error")
		return nil
	}
	return rec
}

func (a *api) one(w http.ResponseWriter, r *http.Request) {
	if rec := a.find(w, r); rec != nil {
		writeJSON(w, http.StatusOK, toJSON(*rec))
	}
}

func (a *api) media(w http.ResponseWriter, r *http.Request) {
	rec := a.find(w, r)
	if rec == nil {
		return
	}
	fileID, _ := positive(r.PathValue("fileId"))
	var file *File
	for i := range rec.Files {
		if rec.Files[i].ID == fileID {
			file = &rec.Files[i]
		}
	}
	if file == nil || file.Path == "" || filepath.IsAbs(file.Path) || strings.Contains(file.Path, "..") {
		a.fail(w, r, http.StatusNotFound, "not_found")
		return
	}
	f, err := os.Open(filepath.Join(a.rec.cfg.Dir, file.Path))
	if err != nil {
		// Kept on another node's disk, or removed.
		a.fail(w, r, http.StatusNotFound, "not_found")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		a.fail(w, r, http.StatusNotFound, "not_found")
		return
	}
	w.Header().Set("Content-Type", "video/webm")
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `inline; filename="recording-`+strconv.FormatInt(rec.ID, 10)+"-"+
		strconv.FormatInt(file.ID, 10)+`.webm"`)
	http.ServeContent(w, r, "", st.ModTime(), f)
}
