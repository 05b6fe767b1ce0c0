package chat

import (
	"context"
	"errors"
	"fmt"
)

// demoPassword is every demo account's password (operations: --demo).
const demoPassword = "demo1234"

type demoMember struct {
	companyID int64
	login     string
	name      string
	admin     bool
}

func demoCompanies() []Company {
	company := func(id int64, name string) Company {
		waiting := "상담사 연결을 기다리고 있습니다. 잠시만 기다려 주세요."
		reply := "상담사가 답변을 준비하고 있습니다. 잠시만 기다려 주세요."
		return Company{
			ID:          id,
			Name:        name,
			WaitingText: &waiting,
			ReplyText:   &reply,
			WorkStart:   "09:00",
			WorkEnd:     "18:00",
			LunchStart:  "12:00",
			LunchEnd:    "13:00",
			WorkingText: "안녕하세요, " + name + " 고객센터입니다. 무엇을 도와드릴까요? 상담사가 곧 연결됩니다.",
			AfterHoursText: "지금은 상담 시간(09:00~18:00)이 아닙니다. 남겨 주신 문의는 상담 시간에 순서대로 답변드리겠습니다. " +
				"가스 누출 등 긴급한 일은 " + name + " 고객센터로 전화해 주세요.",
			LunchText: "지금은 점심시간(12:00~13:00)입니다. 13시부터 순서대로 답변드리겠습니다.",
		}
	}
	seoul := company(1, "서울도시가스")
	// The demo shows routing: company 1's first customer message goes to
	// an AVAILABLE counselor by itself.
	seoul.AutoAssign = true
	return []Company{seoul, company(2, "인천도시가스")}
}

// demoCanned are the reply templates every demo company starts with.
func demoCanned() []CannedResponse {
	return []CannedResponse{
		{Shortcut: "인사", Title: "첫 인사", Text: "안녕하세요, 고객님. 상담사입니다. 무엇을 도와드릴까요?"},
		{Shortcut: "요금", Title: "요금 조회 안내", Text: "요금은 앱의 [요금 조회] 메뉴에서 월별로 확인하실 수 있습니다. 자동이체 변경도 같은 메뉴에서 가능합니다."},
		{Shortcut: "점검", Title: "안전점검 예약", Text: "안전점검은 앱의 [점검 예약] 메뉴에서 원하시는 날짜와 시간을 고르시면 됩니다. 점검원이 방문 하루 전에 연락드립니다."},
		{Shortcut: "마무리", Title: "상담 마무리", Text: "더 궁금하신 점이 없으시면 상담을 종료하겠습니다. 이용해 주셔서 감사합니다."},
	}
}

func demoMembers() []demoMember {
	return []demoMember{
		{companyID: 1, login: "agent1", name: "상담사1"},
		{companyID: 1, login: "agent2", name: "상담사2"},
		{companyID: 2, login: "agent3", name: "상담사3"},
		{companyID: 1, login: "admin1", name: "관리자", admin: true},
	}
}

// SeedDemo creates the demo tenants and accounts of the operations guide
// where they are missing. What exists is left exactly as it is, so running
// it on every start changes nothing after the first.
func (s *Service) SeedDemo(ctx context.Context) error {
	for _, c := range demoCompanies() {
		_, err := s.store.Company(ctx, c.ID)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("chat: demo company %d: %w", c.ID, err)
		}
		if err := s.store.SaveCompany(ctx, &c); err != nil {
			return fmt.Errorf("chat: create demo company %d: %w", c.ID, err)
		}
		for _, cr := range demoCanned() {
			cr.CompanyID = c.ID
			if err := s.store.CreateCannedResponse(ctx, &cr); err != nil {
				return fmt.Errorf("chat: demo canned response %q of company %d: %w", cr.Shortcut, c.ID, err)
			}
		}
		s.log.Info("demo company created", "companyId", c.ID, "name", c.Name)
	}
	for _, dm := range demoMembers() {
		_, err := s.store.MemberByLogin(ctx, dm.login)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("chat: demo member %s: %w", dm.login, err)
		}
		if _, err := s.AddMember(ctx, dm.companyID, dm.login, demoPassword, dm.name, dm.admin); err != nil {
			return fmt.Errorf("chat: create demo member %s: %w", dm.login, err)
		}
	}
	return nil
}
