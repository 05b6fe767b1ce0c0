package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// A company may show its customers' contracts in the console from its own
// systems: cstalk asks the company's ContractsURL, adding the query
// parameters companyId and gasappMemberNumber, and expects 200 with a JSON
// array, which it passes on as it is. The call has a deadline
// (Config.ContractsTimeout), the answer a ceiling (contractsMaxBytes), and a
// company only so many calls in flight per node (contractsPerCompany), so a
// slow or flooded company system costs its own console, nobody else.

const (
	contractsMaxBytes   = 1 << 20
	contractsPerCompany = 16
	maxContractsURL     = 2048
)

var (
	// errContractsFailed: the endpoint could not be reached, answered other
	// than 2xx, or sent something that is not a JSON array within the limit.
	errContractsFailed  = errors.New("contracts endpoint failed")
	errContractsTimeout = errors.New("contracts endpoint timed out")
	errContractsBusy    = errors.New("too many contract requests in flight for the company")
)

// CheckContractsURL tells whether u may be a company's ContractsURL: an
// absolute http or https URL with a host, at most 2,048 bytes. "" (no
// endpoint) is fine. The URL may carry the company's own key in its query.
func CheckContractsURL(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > maxContractsURL {
		return fmt.Errorf("contracts URL is longer than %d bytes", maxContractsURL)
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("contracts URL: %w", err)
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" || p.User != nil {
		return fmt.Errorf("contracts URL %q: want http(s)://host/path[?query], without credentials or fragment", p.Redacted())
	}
	return nil
}

// contractSource calls the companies' contract endpoints.
type contractSource struct {
	client  *http.Client
	timeout time.Duration

	mu       sync.Mutex
	inFlight map[int64]int // per company; entries go when they reach 0
}

func newContractSource(timeout time.Duration) *contractSource {
	return &contractSource{
		// The deadline is the request context's; the client only refuses
		// endless redirect chains, as its default does.
		client:   &http.Client{},
		timeout:  timeout,
		inFlight: make(map[int64]int),
	}
}

// fetch returns the contracts of customer number of company c: none when c
// has no endpoint.
func (cs *contractSource) fetch(ctx context.Context, c *Company, number string) ([]json.RawMessage, error) {
	if c.ContractsURL == "" {
		return []json.RawMessage{}, nil
	}
	if !cs.acquire(c.ID) {
		return nil, errContractsBusy
	}
	defer cs.release(c.ID)
	if err := CheckContractsURL(c.ContractsURL); err != nil {
		return nil, fmt.Errorf("%w: %w", errContractsFailed, err)
	}
	u, _ := url.Parse(c.ContractsURL)
	q := u.Query()
	q.Set("companyId", strconv.FormatInt(c.ID, 10))
	q.Set("gasappMemberNumber", number)
	u.RawQuery = q.Encode()
	// Only the host is ever logged: the query may hold the company's key.
	host := u.Host

	ctx, cancel := context.WithTimeout(ctx, cs.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errContractsFailed, host, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cstalk")
	resp, err := cs.client.Do(req)
	if err != nil {
		return nil, cs.callError(ctx, host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: %s answered %d", errContractsFailed, host, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, contractsMaxBytes+1))
	if err != nil {
		return nil, cs.callError(ctx, host, err)
	}
	if len(body) > contractsMaxBytes {
		return nil, fmt.Errorf("%w: %s answered more than %d bytes", errContractsFailed, host, contractsMaxBytes)
	}
	var list []json.RawMessage
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '[' || json.Unmarshal(trimmed, &list) != nil {
		return nil, fmt.Errorf("%w: %s answered no JSON array", errContractsFailed, host)
	}
	return list, nil
}

// callError tells a deadline that passed from any other failure to talk to
// the endpoint. A client that went away is neither: the caller sees ctx.
func (cs *contractSource) callError(ctx context.Context, host string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s after %v", errContractsTimeout, host, cs.timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("contracts from %s: %w", host, ctx.Err())
	}
	// A url.Error repeats the URL, query and all: keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %s: %w", errContractsFailed, host, err)
}

func (cs *contractSource) acquire(company int64) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.inFlight[company] >= contractsPerCompany {
		return false
	}
	cs.inFlight[company]++
	return true
}

func (cs *contractSource) release(company int64) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.inFlight[company]--; cs.inFlight[company] <= 0 {
		delete(cs.inFlight, company)
	}
}
