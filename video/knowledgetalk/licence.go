package knowledgetalk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Demo licence made by --demo for company 1.
const (
	DemoCPCode  = "KP-DEMO-0001"
	DemoAuthKey = "demo-kt-auth-key"
)

// SeedDemo creates the demo licence if it is missing.
func SeedDemo(ctx context.Context, st Store, now time.Time) error {
	if _, err := st.KTLicence(ctx, DemoCPCode); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("knowledgetalk demo licence: %w", err)
	}
	l := &Licence{CPCode: DemoCPCode, CompanyID: 1, AuthKeyHash: HashAuthKey(DemoAuthKey), CreatedAt: now}
	if err := st.SaveKTLicence(ctx, l); err != nil {
		return fmt.Errorf("knowledgetalk demo licence: %w", err)
	}
	return nil
}

// errBadLicence is a cpCode or authKey that matches no licence.
var errBadLicence = errors.New("knowledgetalk: bad licence")

// licences checks (cpCode, authKey) pairs. Every request carries one, so
// answers are cached for a short while: a licence removed or changed takes
// effect on every node within cacheTTL. The cache is bounded, so a client
// trying random codes costs store lookups (which the rate limit bounds),
// never memory.
type licences struct {
	store Store
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]licenceEntry // by cpCode
}

type licenceEntry struct {
	lic *Licence // nil: no such cpCode
	at  time.Time
}

func newLicences(st Store, ttl time.Duration, max int, now func() time.Time) *licences {
	return &licences{store: st, ttl: ttl, max: max, now: now, cache: map[string]licenceEntry{}}
}

// check returns the company of the licence (cpCode, authKey), errBadLicence
// when there is none, or the store's error.
func (l *licences) check(ctx context.Context, cpCode, authKey string) (int64, error) {
	if cpCode == "" || authKey == "" {
		return 0, errBadLicence
	}
	now := l.now()
	l.mu.Lock()
	e, ok := l.cache[cpCode]
	l.mu.Unlock()
	if !ok || now.Sub(e.at) >= l.ttl {
		lic, err := l.store.KTLicence(ctx, cpCode)
		switch {
		case errors.Is(err, ErrNotFound):
			lic = nil
		case err != nil:
			return 0, err
		}
		e = licenceEntry{lic: lic, at: now}
		l.mu.Lock()
		if len(l.cache) >= l.max {
			l.evictLocked(now)
		}
		l.cache[cpCode] = e
		l.mu.Unlock()
	}
	if e.lic == nil || !e.lic.Matches(authKey) {
		return 0, errBadLicence
	}
	return e.lic.CompanyID, nil
}

// evictLocked drops expired entries, or everything when none has expired.
func (l *licences) evictLocked(now time.Time) {
	for k, e := range l.cache {
		if now.Sub(e.at) >= l.ttl {
			delete(l.cache, k)
		}
	}
	if len(l.cache) >= l.max {
		clear(l.cache)
	}
}
