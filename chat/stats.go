package chat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// The team figures: for a period of days in the configured zone, per
// member and for the company, each figure dated by its own event:
//
//   - roomsHandled: rooms that ended in the period with an assignee (the
//     last one), counted for that member;
//   - medianHandlingSeconds: of those rooms, from the first assignment to
//     the end (from creation for rooms assigned before that was recorded);
//   - medianFirstResponseSeconds: rooms whose first answer came in the
//     period: from the customer's first conversation message to the first
//     member conversation message after it, counted for who answered;
//   - csatAverage, csatCount: REVIEW scores given in the period, counted
//     for the room's assignee;
//   - messages: conversation messages written in the period (no notes, no
//     system lines): the member's own, or for the company everyone's,
//     customers included.
//
// Medians of an even count are the mean of the two middle values. A figure
// without data is null. The day series gives the company's figures per
// day.

// ErrBadPeriod refuses a period that is not 1 to MaxStatsDays days.
var ErrBadPeriod = errors.New("chat: bad period")

// MaxStatsDays bounds a period.
const MaxStatsDays = 92

// Figures are one set of team figures.
type Figures struct {
	RoomsHandled               int      `json:"roomsHandled"`
	MedianFirstResponseSeconds *float64 `json:"medianFirstResponseSeconds"`
	MedianHandlingSeconds      *float64 `json:"medianHandlingSeconds"`
	CsatAverage                *float64 `json:"csatAverage"`
	CsatCount                  int      `json:"csatCount"`
	Messages                   int      `json:"messages"`
}

// MemberFigures are one member's figures.
type MemberFigures struct {
	MemberID  int64  `json:"memberId"`
	LoginName string `json:"loginName"`
	Name      string `json:"name"`
	Figures
}

// DayFigures are the company's figures of one day.
type DayFigures struct {
	Date string `json:"date"`
	Figures
}

// Stats is the answer of GET /api/admin/stats.
type Stats struct {
	From    string          `json:"from"`
	To      string          `json:"to"`
	Zone    string          `json:"zone"`
	Company Figures         `json:"company"`
	Members []MemberFigures `json:"members"`
	Days    []DayFigures    `json:"days"`
}

// figureSet collects the raw values of one Figures.
type figureSet struct {
	handled, messages int
	firstResponse     []float64
	handling          []float64
	scores            []int
}

func (f *figureSet) figures() Figures {
	out := Figures{RoomsHandled: f.handled, Messages: f.messages, CsatCount: len(f.scores),
		MedianFirstResponseSeconds: median(f.firstResponse), MedianHandlingSeconds: median(f.handling)}
	if len(f.scores) > 0 {
		sum := 0
		for _, s := range f.scores {
			sum += s
		}
		avg := math.Round(float64(sum)/float64(len(f.scores))*100) / 100
		out.CsatAverage = &avg
	}
	return out
}

// median of seconds, to a tenth of a second; nil for none.
func median(v []float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	m = math.Round(m*10) / 10
	return &m
}

// ParsePeriod reads from and to ("YYYY-MM-DD", both days included) in the
// configured zone; empty from and to mean the 7 days up to today.
func (s *Service) ParsePeriod(from, to string) (first, last time.Time, err error) {
	zone := s.cfg.Zone
	today := s.now().In(zone)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, zone)
	if to == "" {
		last = today
	} else if last, err = time.ParseInLocation(time.DateOnly, to, zone); err != nil {
		return first, last, fmt.Errorf("%w: to %q", ErrBadPeriod, to)
	}
	if from == "" {
		first = last.AddDate(0, 0, -6)
	} else if first, err = time.ParseInLocation(time.DateOnly, from, zone); err != nil {
		return first, last, fmt.Errorf("%w: from %q", ErrBadPeriod, from)
	}
	if last.Before(first) || len(dayBounds(first, last)) > MaxStatsDays+1 {
		return first, last, fmt.Errorf("%w: %s to %s", ErrBadPeriod, first.Format(time.DateOnly), last.Format(time.DateOnly))
	}
	return first, last, nil
}

// dayBounds are the starts of the days first..last and the end of the
// last, in their zone: a day is 23 or 25 hours where clocks change.
func dayBounds(first, last time.Time) []time.Time {
	var b []time.Time
	for d := first; !d.After(last) && len(b) <= MaxStatsDays+1; d = d.AddDate(0, 0, 1) {
		b = append(b, d)
	}
	return append(b, last.AddDate(0, 0, 1))
}

// Stats computes the figures of the administrator's company for the days
// first..last (see ParsePeriod).
func (s *Service) Stats(ctx context.Context, admin *Member, first, last time.Time) (*Stats, error) {
	company := admin.CompanyID
	bounds := dayBounds(first, last)
	from, to := bounds[0], bounds[len(bounds)-1]
	members, err := s.store.Members(ctx, company)
	if err != nil {
		return nil, fmt.Errorf("chat: stats: %w", err)
	}
	handled, err := s.store.HandledRooms(ctx, company, from, to)
	if err != nil {
		return nil, fmt.Errorf("chat: stats: %w", err)
	}
	responses, err := s.store.FirstResponses(ctx, company, from, to)
	if err != nil {
		return nil, fmt.Errorf("chat: stats: %w", err)
	}
	reviews, err := s.store.Reviews(ctx, company, from, to)
	if err != nil {
		return nil, fmt.Errorf("chat: stats: %w", err)
	}
	counts, err := s.store.MessageCounts(ctx, company, bounds)
	if err != nil {
		return nil, fmt.Errorf("chat: stats: %w", err)
	}

	days := len(bounds) - 1
	all, perDay, perMember := &figureSet{}, make([]figureSet, days), map[int64]*figureSet{}
	of := func(member int64) *figureSet {
		if perMember[member] == nil {
			perMember[member] = &figureSet{}
		}
		return perMember[member]
	}
	// dayOf is the index of the day t falls in.
	dayOf := func(t time.Time) int {
		return max(0, min(days-1, sort.Search(days, func(i int) bool { return bounds[i+1].After(t) })))
	}
	for _, h := range handled {
		start := h.CreateDate
		if h.AssignDate != nil {
			start = *h.AssignDate
		}
		secs := max(0, h.EndDate.Sub(start).Seconds())
		for _, f := range []*figureSet{all, &perDay[dayOf(h.EndDate)], of(h.MemberID)} {
			f.handled++
			f.handling = append(f.handling, secs)
		}
	}
	for _, r := range responses {
		secs := max(0, r.ResponseAt.Sub(r.CustomerAt).Seconds())
		for _, f := range []*figureSet{all, &perDay[dayOf(r.ResponseAt)], of(r.MemberID)} {
			f.firstResponse = append(f.firstResponse, secs)
		}
	}
	for _, r := range reviews {
		sets := []*figureSet{all, &perDay[dayOf(r.Date)]}
		if r.MemberID != 0 {
			sets = append(sets, of(r.MemberID))
		}
		for _, f := range sets {
			f.scores = append(f.scores, r.Score)
		}
	}
	for _, c := range counts {
		all.messages += c.Count
		if c.Day >= 0 && c.Day < days {
			perDay[c.Day].messages += c.Count
		}
		if c.MemberID != 0 {
			of(c.MemberID).messages += c.Count
		}
	}

	out := &Stats{
		From: first.Format(time.DateOnly), To: last.Format(time.DateOnly), Zone: s.cfg.Zone.String(),
		Company: all.figures(), Members: make([]MemberFigures, 0, len(members)), Days: make([]DayFigures, days),
	}
	for i := range members {
		m := &members[i]
		out.Members = append(out.Members, MemberFigures{MemberID: m.ID, LoginName: m.LoginName, Name: m.Name, Figures: of(m.ID).figures()})
	}
	for i := range perDay {
		out.Days[i] = DayFigures{Date: bounds[i].Format(time.DateOnly), Figures: perDay[i].figures()}
	}
	return out, nil
}
