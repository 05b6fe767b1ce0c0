package guide

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cstalk/cstalk/video"
)

// VideoRooms is the part of the video server the guide needs: ending a
// guide's room. *video.Server satisfies it.
type VideoRooms interface {
	CloseRoom(key video.RoomKey) int
}

// Service runs guide sessions. Timers and the session clocks live in the
// process that created the session; the store arbitrates every change that
// must happen once, so two nodes (or a node and an app) racing to end the
// same guide still complete it once.
type Service struct {
	cfg   Config
	store Store
	hub   *Hub
	push  Notifier
	log   *slog.Logger

	// ctx bounds the store calls of timer callbacks; Close cancels it
	// after the callbacks in flight have returned.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	rooms  VideoRooms
	// holds reserves mates with an open session made here (0 while the
	// session row is being created), users the users with one.
	holds   map[int64]int64
	users   map[int64]int64
	pending map[int64]*pendingSession // requested or approved, by gs_seq
	live    map[int64]*liveGuide      // active, by gs_seq
	// inflight counts timer callbacks running.
	inflight sync.WaitGroup

	dummyOnce sync.Once
	dummyHash string
}

// pendingSession is a session waiting for the mate's answer or for begin.
type pendingSession struct {
	gs    Session
	timer Timer
	gen   int
}

// liveGuide is the clock of an active guide.
type liveGuide struct {
	// op orders the store operations of one guide (extend, complete), so
	// an extension and the expiry never both win. Take it before mu.
	op sync.Mutex

	// Guarded by Service.mu.
	gs              Session
	h               History
	warn, expire    Timer
	watchdog        Timer
	gen, watchGen   int
	seen            time.Time
	done            bool
	lastTicketsLeft int
}

// New builds the service. push (optional) receives every event besides the
// in-process hub; rooms (optional until video is wired) closes rooms.
func New(cfg Config, store Store, push Notifier, rooms VideoRooms, log *slog.Logger) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("guide: no store")
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "guide")
	if cfg.RandIntN == nil {
		cfg.RandIntN = rand.IntN
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg: cfg, store: store, hub: NewHub(cfg.EventQueue, log), push: push, rooms: rooms, log: log,
		ctx: ctx, cancel: cancel,
		holds: map[int64]int64{}, users: map[int64]int64{},
		pending: map[int64]*pendingSession{}, live: map[int64]*liveGuide{},
	}, nil
}

// Hub is the in-process event hub (the /guide/events stream reads it).
func (s *Service) Hub() *Hub { return s.hub }

// Close stops every clock and waits for the callbacks in flight. Guides
// still open stay open in the store; Recover re-arms them on the next start.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, p := range s.pending {
		p.timer.Stop()
	}
	for _, l := range s.live {
		stopAll(l.warn, l.expire, l.watchdog)
	}
	s.mu.Unlock()
	s.inflight.Wait()
	s.cancel()
	s.hub.closeAll()
	return nil
}

func stopAll(timers ...Timer) {
	for _, t := range timers {
		if t != nil {
			t.Stop()
		}
	}
}

// after runs f after d unless the service closed meanwhile. Call with mu
// held or not; f runs without it.
func (s *Service) after(d time.Duration, f func(ctx context.Context)) Timer {
	return s.cfg.AfterFunc(max(d, 0), func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		defer s.inflight.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		f(ctx)
	})
}

func (s *Service) notify(ctx context.Context, accountID int64, ev Event) {
	if ev.At.IsZero() {
		ev.At = s.cfg.Now().UTC()
	}
	s.hub.Notify(ctx, accountID, ev)
	if s.push != nil {
		s.push.Notify(ctx, accountID, ev)
	}
}

// UseVideo sets the video rooms after New: the video server is built with
// the guide's VideoAuthorizer, so it exists only after the guide does.
func (s *Service) UseVideo(rooms VideoRooms) {
	s.mu.Lock()
	s.rooms = rooms
	s.mu.Unlock()
}

func (s *Service) closeRoom(gsSeq int64) {
	s.mu.Lock()
	rooms := s.rooms
	s.mu.Unlock()
	if rooms != nil {
		rooms.CloseRoom(RoomKey(gsSeq))
	}
}

func partyOf(a *Account) *Party {
	p := &Party{ID: a.ID, Name: a.Name}
	if a.Role == RoleMate {
		p.Rating, p.RatingCount = a.Rating(), a.RatingCount
	}
	return p
}

// ---- accounts ----

const (
	maxLoginBytes    = 100
	maxNameChars     = 255
	maxPasswordBytes = 72 // bcrypt's limit
)

func validAccountInput(login, password, name string) bool {
	return login != "" && len(login) <= maxLoginBytes && utf8.ValidString(login) &&
		strings.TrimSpace(login) == login && password != "" && len(password) <= maxPasswordBytes &&
		strings.TrimSpace(name) != "" && utf8.RuneCountInString(name) <= maxNameChars && utf8.ValidString(name)
}

// CreateAccount creates a user (with tickets) or a mate (available).
func (s *Service) CreateAccount(ctx context.Context, role Role, login, password, name string, tickets int) (*Account, error) {
	if (role != RoleUser && role != RoleMate) || !validAccountInput(login, password, name) || tickets < 0 {
		return nil, errBadRequest
	}
	hash, err := hashPassword(password, s.cfg.PasswordCost)
	if err != nil {
		return nil, err
	}
	a := &Account{Role: role, LoginName: login, Name: name, PasswordHash: hash, CreatedAt: s.cfg.Now()}
	if role == RoleUser {
		a.Tickets = tickets
	} else {
		a.Availability = Available
	}
	if err := s.store.CreateGuideAccount(ctx, a); errors.Is(err, ErrConflict) {
		return nil, errLoginTaken
	} else if err != nil {
		return nil, fmt.Errorf("guide: create account: %w", err)
	}
	s.log.Info("guide account created", "account", a.ID, "role", role)
	return a, nil
}

// Login checks a login name and password.
func (s *Service) Login(ctx context.Context, login, password string) (*Account, error) {
	a, err := s.store.GuideAccountByLogin(ctx, login)
	if errors.Is(err, ErrNotFound) {
		// Spend the time a real check would, so timing tells nothing.
		s.dummyOnce.Do(func() { s.dummyHash, _ = hashPassword("cstalk-guide-dummy", s.cfg.PasswordCost) })
		checkPassword(s.dummyHash, password)
		return nil, errBadLogin
	}
	if err != nil {
		return nil, fmt.Errorf("guide: login: %w", err)
	}
	if !checkPassword(a.PasswordHash, password) {
		return nil, errBadLogin
	}
	return a, nil
}

// AddTickets changes a user's ticket balance (purchases are the wiring's).
func (s *Service) AddTickets(ctx context.Context, userID int64, n int) (int, error) {
	left, err := s.store.AddTickets(ctx, userID, n)
	if err != nil {
		return 0, fmt.Errorf("guide: add tickets: %w", err)
	}
	return left, nil
}

// SetAvailability lets a mate go available or offline (busy is the server's).
func (s *Service) SetAvailability(ctx context.Context, mate *Account, a Availability) error {
	if mate.Role != RoleMate {
		return errMatesOnly
	}
	if a != Available && a != Offline {
		return errBadRequest
	}
	if err := s.store.SetAvailability(ctx, mate.ID, a); err != nil {
		return fmt.Errorf("guide: set availability: %w", err)
	}
	return nil
}

// AddFriend adds mate mateID to user's friends.
func (s *Service) AddFriend(ctx context.Context, user *Account, mateID int64) error {
	if user.Role != RoleUser {
		return errUsersOnly
	}
	mate, err := s.store.GuideAccount(ctx, mateID)
	if errors.Is(err, ErrNotFound) || (err == nil && mate.Role != RoleMate) {
		return errNotFriend
	}
	if err != nil {
		return fmt.Errorf("guide: add friend: %w", err)
	}
	if err := s.store.AddFriend(ctx, user.ID, mateID, s.cfg.Now()); err != nil {
		return fmt.Errorf("guide: add friend: %w", err)
	}
	return nil
}

// Friends lists a user's friend mates.
func (s *Service) Friends(ctx context.Context, user *Account) ([]Account, error) {
	if user.Role != RoleUser {
		return nil, errUsersOnly
	}
	f, err := s.store.Friends(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("guide: friends: %w", err)
	}
	return f, nil
}

// TopMates is the ranking: the best-rated mates, rank 1 first.
func (s *Service) TopMates(ctx context.Context, limit int) ([]RankedMate, error) {
	if limit <= 0 || limit > s.cfg.TopMates {
		limit = s.cfg.TopMates
	}
	mates, err := s.store.RankedMates(ctx, false, limit)
	if err != nil {
		return nil, fmt.Errorf("guide: top mates: %w", err)
	}
	out := make([]RankedMate, len(mates))
	for i, m := range mates {
		out[i] = RankedMate{Account: m, Rank: i + 1}
	}
	return out, nil
}

// rankOf is mateID's place in the ranking, 0 when beyond the list.
func (s *Service) rankOf(ctx context.Context, mateID int64) int {
	top, err := s.TopMates(ctx, s.cfg.TopMates)
	if err != nil {
		s.log.Warn("rank of mate", "mate", mateID, "err", err)
		return 0
	}
	for _, m := range top {
		if m.ID == mateID {
			return m.Rank
		}
	}
	return 0
}
