package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Who may fetch /files/{companyId}/{roomId}/{name}: a member of that company,
// or the room's customer. Browsers load <img> without an Authorization
// header, so besides the headers of the API a reader can prove itself with a
// file access grant: a short-lived token signed with a key of its own, sent
// as the cstalk_files cookie (set at login and by POST /api/files/access) or
// as ?access= (for pages on another site, where cookies are not sent). The
// stored paths themselves carry no credential: messageDetail lives forever.
const (
	fileCookie        = "cstalk_files"
	fileGrantAudience = "cstalk-files"
	// fileGrantTTL bounds grants that travel in URLs (and so end up in
	// histories and logs); clients ask POST /api/files/access again.
	fileGrantTTL = time.Hour
)

// storedFileName matches exactly the names upload.go writes; anything else
// under /files/ does not exist, whatever the disk holds.
var storedFileName = regexp.MustCompile(`^[0-9a-f]{32}(\.thumb)?\.(png|jpg|gif|webp)$`)

// storedFileType is the Content-Type of a stored name's extension, which
// upload.go chose from the sniffed content, never from the client.
func storedFileType(name string) string {
	switch path.Ext(name) {
	case ".png":
		return "image/png"
	case ".jpg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	}
	return "application/octet-stream"
}

func deriveFileKey(secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("cstalk file access grants"))
	return mac.Sum(nil)
}

// fileClaims scope a grant to one company and one member or customer.
type fileClaims struct {
	jwt.RegisteredClaims
	CompanyID int64 `json:"cid"`
}

func memberSubject(m *Member) string     { return "member:" + strconv.FormatInt(m.ID, 10) }
func customerSubject(c *Customer) string { return "customer:" + strconv.FormatInt(c.ID, 10) }

func (a *api) now() time.Time {
	if a.s.cfg.Now != nil {
		return a.s.cfg.Now()
	}
	return time.Now()
}

func (a *api) fileGrant(subject string, companyID int64, expires time.Time) (string, error) {
	claims := fileClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.s.cfg.JWTIssuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{fileGrantAudience},
			IssuedAt:  jwt.NewNumericDate(a.now()),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
		CompanyID: companyID,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.fileKey)
	if err != nil {
		return "", fmt.Errorf("sign file grant: %w", err)
	}
	return signed, nil
}

// fileReader is whoever asks for a file: a member of CompanyID, or (when
// CustomerID is set) one customer of it.
type fileReader struct {
	CompanyID  int64
	MemberID   int64
	CustomerID int64
}

func (fr fileReader) mayRead(room *Room) bool {
	if room.CompanyID != fr.CompanyID {
		return false
	}
	if fr.CustomerID != 0 {
		return room.CustomerID == fr.CustomerID
	}
	return fr.MemberID != 0
}

func (a *api) parseFileGrant(token string) (fileReader, error) {
	var claims fileClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return a.fileKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(fileGrantAudience),
		jwt.WithIssuer(a.s.cfg.JWTIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
	)
	if err != nil {
		return fileReader{}, fmt.Errorf("file grant: %w", err)
	}
	kind, idText, _ := strings.Cut(claims.Subject, ":")
	id, ok := positiveID(idText)
	if !ok || claims.CompanyID <= 0 {
		return fileReader{}, errors.New("file grant: bad subject")
	}
	switch kind {
	case "member":
		return fileReader{CompanyID: claims.CompanyID, MemberID: id}, nil
	case "customer":
		return fileReader{CompanyID: claims.CompanyID, CustomerID: id}, nil
	}
	return fileReader{}, errors.New("file grant: bad subject")
}

// hasCustomerHeaders reports whether r identifies a customer the way a
// STOMP CONNECT does.
func hasCustomerHeaders(r *http.Request) bool {
	return r.Header.Get("companyId") != "" || r.Header.Get("gasappMemberNumber") != ""
}

// caller authenticates a member (bearer token) or a customer (CONNECT-style
// headers). On failure it has answered 401 and returns ok == false.
func (a *api) caller(w http.ResponseWriter, r *http.Request) (m *Member, company *Company, customer *Customer, ok bool) {
	if bearer(r) != "" || !hasCustomerHeaders(r) {
		m = a.member(w, r)
		return m, nil, nil, m != nil
	}
	company, customer, err := a.s.CustomerFromHeaders(r.Context(), r.Header.Get)
	switch {
	case errors.Is(err, ErrUnknownCompany), errors.Is(err, ErrBadCustomerHeaders), errors.Is(err, ErrCustomerCredentials):
		a.log.Info("customer headers refused", "path", r.URL.Path, "err", err)
		a.fail(w, r, http.StatusUnauthorized, "api_unauthorized")
		return nil, nil, nil, false
	case err != nil:
		a.internal(w, r, "customer of headers", err)
		return nil, nil, nil, false
	}
	return nil, company, customer, true
}

// fileReaderOf tries, in order, every credential the request carries; the
// first valid one wins. It answers 401 itself when none is valid.
func (a *api) fileReaderOf(w http.ResponseWriter, r *http.Request) (fileReader, bool) {
	if bearer(r) != "" || hasCustomerHeaders(r) {
		m, company, customer, ok := a.caller(w, r)
		switch {
		case !ok:
			return fileReader{}, false
		case m != nil:
			return fileReader{CompanyID: m.CompanyID, MemberID: m.ID}, true
		default:
			return fileReader{CompanyID: company.ID, CustomerID: customer.ID}, true
		}
	}
	var grants []string
	if v := r.URL.Query().Get("access"); v != "" {
		grants = append(grants, v)
	}
	if c, err := r.Cookie(fileCookie); err == nil && c.Value != "" {
		grants = append(grants, c.Value)
	}
	for _, g := range grants {
		fr, err := a.parseFileGrant(g)
		if err == nil {
			return fr, true
		}
		a.log.Debug("file grant refused", "err", err)
	}
	a.fail(w, r, http.StatusUnauthorized, "api_unauthorized")
	return fileReader{}, false
}

func (a *api) setFileCookie(w http.ResponseWriter, r *http.Request, grant string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     fileCookie,
		Value:    grant,
		Path:     "/files/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		SameSite: http.SameSiteLaxMode,
	})
}

type fileAccessResponse struct {
	Access    string    `json:"access"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// fileAccess hands a member or customer a grant for the files it may read,
// as a cookie and as a value for ?access=.
func (a *api) fileAccess(w http.ResponseWriter, r *http.Request) {
	m, company, customer, ok := a.caller(w, r)
	if !ok {
		return
	}
	subject, companyID := "", int64(0)
	if m != nil {
		subject, companyID = memberSubject(m), m.CompanyID
	} else {
		subject, companyID = customerSubject(customer), company.ID
	}
	expires := a.now().Add(fileGrantTTL)
	grant, err := a.fileGrant(subject, companyID, expires)
	if err != nil {
		a.internal(w, r, "file access", err)
		return
	}
	a.setFileCookie(w, r, grant, expires)
	a.writeJSON(w, http.StatusOK, fileAccessResponse{Access: grant, ExpiresAt: expires.UTC()})
}

// serveFile serves one stored image to those who may read its room. Every
// refusal that could tell whether a room or file exists is a plain 404.
func (a *api) serveFile(w http.ResponseWriter, r *http.Request) {
	companyID, okCompany := positiveID(r.PathValue("company"))
	roomID, okRoom := positiveID(r.PathValue("room"))
	name := r.PathValue("name")
	if !okCompany || !okRoom || !storedFileName.MatchString(name) {
		a.fail(w, r, http.StatusNotFound, "api_not_found")
		return
	}
	reader, ok := a.fileReaderOf(w, r)
	if !ok {
		return
	}
	room, err := a.s.store.Room(r.Context(), roomID)
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "api_not_found")
		return
	case err != nil:
		a.internal(w, r, "load room", err)
		return
	case room.CompanyID != companyID || !reader.mayRead(room):
		a.fail(w, r, http.StatusNotFound, "api_not_found")
		return
	}
	// os.OpenInRoot refuses any path (or symlink) that leads out of the
	// upload directory, whatever slipped past the checks above.
	rel := path.Join(strconv.FormatInt(companyID, 10), strconv.FormatInt(roomID, 10), name)
	f, err := os.OpenInRoot(a.s.cfg.UploadDir, rel)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// E.g. a symlink planted in the upload directory: worth a look,
			// but to the client the file simply is not there.
			a.log.Warn("open stored file", "path", rel, "err", err)
		}
		a.fail(w, r, http.StatusNotFound, "api_not_found")
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		a.fail(w, r, http.StatusNotFound, "api_not_found")
		return
	}
	h := w.Header()
	h.Set("Content-Type", storedFileType(name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Referrer-Policy", "no-referrer")
	// Names are random and files never change, but only this reader may
	// keep a copy.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	http.ServeContent(w, r, name, info.ModTime(), f)
}
