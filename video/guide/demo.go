package guide

import (
	"context"
	"errors"
	"fmt"
)

// DemoPassword is the password of the demo guide accounts.
const DemoPassword = "demo1234"

// SeedDemo creates demo accounts once: mates guide-mate1..3 (available) and
// users guide-user1..2 with 5 tickets each, friends of guide-mate1.
// Accounts that exist already are left as they are.
func (s *Service) SeedDemo(ctx context.Context) error {
	ensure := func(role Role, login, name string, tickets int) (*Account, error) {
		a, err := s.CreateAccount(ctx, role, login, DemoPassword, name, tickets)
		if errors.Is(err, errLoginTaken) {
			return s.store.GuideAccountByLogin(ctx, login)
		}
		return a, err
	}
	var first *Account
	for i, name := range []string{"김가스", "이안전", "박점검"} {
		m, err := ensure(RoleMate, fmt.Sprintf("guide-mate%d", i+1), name, 0)
		if err != nil {
			return fmt.Errorf("guide: demo mate: %w", err)
		}
		if first == nil {
			first = m
		}
	}
	for i, name := range []string{"최고객", "정사용"} {
		u, err := ensure(RoleUser, fmt.Sprintf("guide-user%d", i+1), name, 5)
		if err != nil {
			return fmt.Errorf("guide: demo user: %w", err)
		}
		if err := s.store.AddFriend(ctx, u.ID, first.ID, s.cfg.Now()); err != nil {
			return fmt.Errorf("guide: demo friend: %w", err)
		}
	}
	return nil
}
