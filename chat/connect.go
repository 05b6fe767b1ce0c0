package chat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"weak"

	"golang.org/x/time/rate"

	"github.com/cstalk/cstalk/broker"
)

// Errors of CustomerFromHeaders. ErrCustomerCredentials means the headers
// named a valid customer but its secretKey or signature failed: the STOMP
// side still accepts the connection and answers UNAUTHORIZED.
var (
	ErrUnknownCompany      = errors.New("chat: unknown company")
	ErrBadCustomerHeaders  = errors.New("chat: invalid customer headers")
	ErrCustomerCredentials = errors.New("chat: customer credentials rejected")
)

// Customer CONNECT (and upload) headers.
const (
	HeaderCompanyID       = "companyId"
	HeaderMemberNumber    = "gasappMemberNumber"
	HeaderCustomerName    = "name"
	HeaderSecretKey       = "secretKey"
	HeaderSignature       = "signature"
	HeaderTimestamp       = "timestamp"
	maxCustomerNameRunes  = 100
	maxMemberNumberDigits = 30
)

// CustomerFromHeaders identifies a customer from CONNECT-style headers and
// returns its company and (created on first use) customer row.
//
// Headers: companyId (the company's number), gasappMemberNumber (digits
// only), optional name (display name, UTF-8; updates the stored name).
//
// Credentials, checked in this order:
//
//   - Signed mode: headers "timestamp" (Unix seconds, decimal) and
//     "signature" = hex(HMAC-SHA256(key = the company's signing secret,
//     companyId + "\n" + gasappMemberNumber + "\n" + timestamp)), hex in
//     either case. The timestamp must be within SignatureMaxSkew (default 5
//     minutes) of the server's clock. A present signature is always verified;
//     it is mandatory when Config.RequireSignedCustomers or the company's
//     RequireSigned is set.
//   - Legacy mode: when the request is not signed and the company has a
//     LegacyKeyPrefix, header "secretKey" must equal that prefix followed by
//     today's date YYYYMMDD in Config.Zone (e.g. "PREFIX_20261123").
//   - Otherwise the identity headers alone are accepted, as deployed apps do.
//
// Failing credentials wrap ErrCustomerCredentials (the company and a customer
// value without ID are still returned so the caller can describe who was
// refused); bad headers wrap ErrBadCustomerHeaders, an unknown company
// ErrUnknownCompany.
func (s *Service) CustomerFromHeaders(ctx context.Context, get func(name string) string) (*Company, *Customer, error) {
	companyText := strings.TrimSpace(get(HeaderCompanyID))
	companyID, err := strconv.ParseInt(companyText, 10, 64)
	if err != nil || companyID <= 0 {
		return nil, nil, fmt.Errorf("%w: companyId %q", ErrBadCustomerHeaders, companyText)
	}
	number := strings.TrimSpace(get(HeaderMemberNumber))
	if !isDigits(number) || len(number) > maxMemberNumberDigits {
		return nil, nil, fmt.Errorf("%w: gasappMemberNumber %q", ErrBadCustomerHeaders, number)
	}
	name := strings.TrimSpace(get(HeaderCustomerName))
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxCustomerNameRunes || strings.ContainsAny(name, "\x00\r\n") {
		return nil, nil, fmt.Errorf("%w: name", ErrBadCustomerHeaders)
	}
	company, err := s.store.Company(ctx, companyID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownCompany, companyID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("chat: company %d: %w", companyID, err)
	}
	if err := s.checkCustomerCredentials(company, companyText, number, get); err != nil {
		return company, &Customer{CompanyID: companyID, GasappMemberNumber: number, Name: name}, err
	}
	customer, err := s.store.EnsureCustomer(ctx, companyID, number, name)
	if err != nil {
		return nil, nil, fmt.Errorf("chat: customer %d/%s: %w", companyID, number, err)
	}
	return company, customer, nil
}

func (s *Service) checkCustomerCredentials(company *Company, companyText, number string, get func(string) string) error {
	signature := strings.TrimSpace(get(HeaderSignature))
	if signature != "" {
		return s.checkSignature(company, companyText, number, strings.TrimSpace(get(HeaderTimestamp)), signature)
	}
	if s.cfg.RequireSignedCustomers || company.RequireSigned {
		return fmt.Errorf("%w: signature required", ErrCustomerCredentials)
	}
	if company.LegacyKeyPrefix != "" {
		want := company.LegacyKeyPrefix + s.now().In(s.cfg.Zone).Format("20060102")
		if !hmac.Equal([]byte(get(HeaderSecretKey)), []byte(want)) {
			return fmt.Errorf("%w: secretKey", ErrCustomerCredentials)
		}
	}
	return nil
}

func (s *Service) checkSignature(company *Company, companyText, number, timestamp, signature string) error {
	if company.SigningSecret == "" {
		return fmt.Errorf("%w: company %d has no signing secret", ErrCustomerCredentials, company.ID)
	}
	unix, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrCustomerCredentials, timestamp)
	}
	skew := s.now().Sub(time.Unix(unix, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > s.cfg.SignatureMaxSkew {
		return fmt.Errorf("%w: timestamp off by %s", ErrCustomerCredentials, skew)
	}
	got, err := hex.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not hex", ErrCustomerCredentials)
	}
	if !hmac.Equal(got, SignCustomer(company.SigningSecret, companyText, number, timestamp)) {
		return fmt.Errorf("%w: signature mismatch", ErrCustomerCredentials)
	}
	return nil
}

// SignCustomer computes the signed-mode MAC (raw bytes; send it hex-encoded).
// Company back ends use the same computation to sign their app's CONNECT.
func SignCustomer(secret, companyID, gasappMemberNumber, timestamp string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(companyID + "\n" + gasappMemberNumber + "\n" + timestamp))
	return mac.Sum(nil)
}

func isDigits(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// principal is what one STOMP connection acts as. It is created by
// Authenticate and lives as long as the connection. Hooks run on the
// connection's reader goroutine, but the fields below the mutex are also read
// when other connections' events are fanned out, so they are guarded.
type principal struct {
	lang     Lang
	company  *Company
	member   *Member   // set for counselors
	customer *Customer // set for customers
	speaker  *Speaker  // nil for an unauthorized customer
	// unauthorized marks a customer whose credentials failed: it may only
	// subscribe to its private destination, where it gets UNAUTHORIZED.
	unauthorized bool

	mu         sync.Mutex
	private    bool        // subscribed to the private destination
	lastRoom   int64       // most recently subscribed room
	rooms      []int64     // rooms this connection is present in (a few: its subscriptions)
	openRoomID int64       // the customer's open room (LOGINED)
	lobby      bool        // a member's console on its company's lobby
	typing     typingState // what this connection's TYPING said (typing.go)
	// events is the connection's allowance of client events (Config.EventRate);
	// nil: no limit.
	events *rate.Limiter
}

func (p *principal) isMember() bool { return p.member != nil }

func (p *principal) isAdmin() bool { return p.member != nil && p.member.IsAdmin }

func (p *principal) hasPrivate() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.private
}

func (p *principal) setPrivate(v bool) {
	p.mu.Lock()
	p.private = v
	p.mu.Unlock()
}

func (p *principal) enterRoom(id int64) {
	p.mu.Lock()
	if !slices.Contains(p.rooms, id) {
		p.rooms = append(p.rooms, id)
	}
	p.lastRoom = id
	p.mu.Unlock()
}

// leaveRoom reports whether the connection was present in the room.
func (p *principal) leaveRoom(id int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.rooms, id)
	if i >= 0 {
		p.rooms = slices.Delete(p.rooms, i, i+1)
	}
	if p.lastRoom == id {
		p.lastRoom = 0
		if n := len(p.rooms); n > 0 {
			p.lastRoom = p.rooms[n-1]
		}
	}
	return i >= 0
}

func (p *principal) setLobby(v bool) {
	p.mu.Lock()
	p.lobby = v
	p.mu.Unlock()
}

// leaveLobby reports whether the connection was on its lobby.
func (p *principal) leaveLobby() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.lobby
	p.lobby = false
	return was
}

func (p *principal) roomIDs() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rooms)
}

func (p *principal) currentRoom() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastRoom != 0 {
		return p.lastRoom
	}
	return p.openRoomID
}

// connErr is an Authenticate refusal: its text goes into the ERROR frame, so
// it is a stable code, never an internal error string.
type connErr string

func (e connErr) Error() string { return string(e) }

// Authenticate implements broker.Application: members by bearer token,
// customers by companyId + gasappMemberNumber (see CustomerFromHeaders).
func (s *Service) Authenticate(ctx context.Context, c *broker.Conn, connect broker.Header) (any, error) {
	return s.authenticate(ctx, c.ID(), connect.Get)
}

func (s *Service) authenticate(ctx context.Context, sessionID string, get func(string) string) (*principal, error) {
	p := &principal{lang: LangFrom(get("accept-language")), events: s.eventLimiter()}
	auth := get("Authorization")
	if auth == "" {
		auth = get("authorization")
	}
	if auth != "" || get(HeaderCompanyID) == "" {
		m, err := s.MemberFromToken(ctx, auth)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				s.log.Error("member connect", "session", sessionID, "err", err)
				return nil, connErr("internal error")
			}
			s.log.Info("member connect refused", "session", sessionID, "err", err)
			return nil, connErr("unauthorized")
		}
		company, err := s.store.Company(ctx, m.CompanyID)
		if err != nil {
			s.log.Error("member connect: company", "session", sessionID, "member", m.ID, "err", err)
			return nil, connErr("internal error")
		}
		speaker, err := s.store.MemberSpeaker(ctx, m)
		if err != nil {
			s.log.Error("member connect: speaker", "session", sessionID, "member", m.ID, "err", err)
			return nil, connErr("internal error")
		}
		p.member, p.company = s.members.share(m.ID, m), s.sharedCompany(company)
		p.speaker = s.memberSpeakers.share(speaker.ID, speaker)
		s.rememberSpeaker(true, m.ID, speaker.ID)
		return p, nil
	}
	company, customer, err := s.CustomerFromHeaders(ctx, get)
	switch {
	case errors.Is(err, ErrCustomerCredentials):
		s.log.Info("customer credentials refused", "session", sessionID, "company", company.ID, "err", err)
		p.company, p.customer, p.unauthorized = company, customer, true
		return p, nil
	case errors.Is(err, ErrUnknownCompany):
		return nil, connErr("unknown companyId")
	case errors.Is(err, ErrBadCustomerHeaders):
		s.log.Info("customer connect refused", "session", sessionID, "err", err)
		return nil, connErr("invalid customer headers: companyId and a numeric gasappMemberNumber are required")
	case err != nil:
		s.log.Error("customer connect", "session", sessionID, "err", err)
		return nil, connErr("internal error")
	}
	speaker, err := s.store.CustomerSpeaker(ctx, customer)
	if err != nil {
		s.log.Error("customer connect: speaker", "session", sessionID, "customer", customer.ID, "err", err)
		return nil, connErr("internal error")
	}
	p.company, p.customer, p.speaker = s.sharedCompany(company), customer, speaker
	s.rememberSpeaker(false, customer.ID, speaker.ID)
	return p, nil
}

// sharedCompany returns a copy of c that connections share: the one kept
// from an earlier connection when it reads the same, else c, kept from now
// on. Every connection still reads its company from the store when it
// connects, so it sees what the store holds then, as before; it only need
// not hold a copy of its own (about 1 KiB per idle connection). A
// principal's company is never modified.
func (s *Service) sharedCompany(c *Company) *Company {
	s.companyMu.Lock()
	defer s.companyMu.Unlock()
	if kept := s.companies[c.ID]; kept != nil && reflect.DeepEqual(kept, c) {
		return kept
	}
	if s.companies == nil {
		s.companies = make(map[int64]*Company)
	}
	s.companies[c.ID] = c
	return c
}

// sharedRows keeps one copy of each row (by ID) that connections hold, as
// long as one of them holds it: a counselor's consoles and tabs each read
// their member and speaker when they connect, but need not hold a copy of
// their own (about 0.5 KiB of memory per idle connection, counting the
// collector's headroom). A row that no longer reads the same replaces the
// kept one, so a connection still holds what the store held when it
// connected. Rows handed out are never modified.
type sharedRows[T any] struct {
	mu   sync.Mutex
	rows map[int64]weak.Pointer[T]
}

func (r *sharedRows[T]) share(id int64, v *T) *T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kept := r.rows[id].Value(); kept != nil && reflect.DeepEqual(kept, v) {
		return kept
	}
	if r.rows == nil {
		r.rows = make(map[int64]weak.Pointer[T])
	}
	wp := weak.Make(v)
	r.rows[id] = wp
	// The entry goes with the last connection holding the row, unless a
	// newer row has replaced it by then.
	runtime.AddCleanup(v, r.drop, sharedRow[T]{id, wp})
	return v
}

type sharedRow[T any] struct {
	id int64
	wp weak.Pointer[T]
}

func (r *sharedRows[T]) drop(row sharedRow[T]) {
	r.mu.Lock()
	if r.rows[row.id] == row.wp {
		delete(r.rows, row.id)
	}
	r.mu.Unlock()
}

func principalOf(c *broker.Conn) *principal {
	p, _ := c.Principal().(*principal)
	return p
}
