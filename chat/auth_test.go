package chat_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cstalk/cstalk/chat"
)

func wantConnectRefused(t *testing.T, e *chatEnv, headers map[string]string, want string) {
	t.Helper()
	_, err := e.dial("refused", headers)
	if err == nil {
		t.Fatalf("CONNECT %v accepted, want refused with %q", headers, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("CONNECT %v: %v, want %q", headers, err, want)
	}
}

func TestMemberTokens(t *testing.T) {
	e := newEnv(t)
	good := e.token(e.agent1)
	m, err := e.svc.MemberFromToken(t.Context(), "Bearer "+good)
	if err != nil || m.ID != e.agent1.ID {
		t.Fatalf("MemberFromToken = %v, %v", m, err)
	}

	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := e.clock.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": strconv.FormatInt(e.agent1.ID, 10), "company": 1, "iss": "cstalk",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	secret := []byte("test-secret-0123456789abcdef")
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + strconv.FormatInt(e.agent1.ID, 10) + `","company":1,"iss":"cstalk","exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `}`))
	bad := map[string]string{
		"garbage":         "not-a-token",
		"forged":          sign(jwt.SigningMethodHS256, []byte("someone-elses-secret-1234"), claims(nil)),
		"alg none":        header + "." + payload + ".",
		"HS512":           sign(jwt.SigningMethodHS512, secret, claims(nil)),
		"expired":         sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() })),
		"no expiry":       sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"wrong issuer":    sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })),
		"unknown member":  sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "999999" })),
		"other company":   sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["company"] = 2 })),
		"tampered claims": good[:strings.Index(good, ".")] + "." + payload + good[strings.LastIndex(good, "."):],
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := e.svc.MemberFromToken(t.Context(), "Bearer "+tok); err == nil {
				t.Fatalf("token accepted")
			}
			wantConnectRefused(t, e, map[string]string{"Authorization": "Bearer " + tok}, "unauthorized")
		})
	}
	t.Run("expires with the clock", func(t *testing.T) {
		e.clock.Advance(12*time.Hour + time.Second)
		defer e.clock.Advance(-(12*time.Hour + time.Second))
		wantConnectRefused(t, e, map[string]string{"Authorization": "Bearer " + good}, "unauthorized")
	})
	// The good token connects, with or without the prefix's case.
	c := e.mustDial("agent", map[string]string{"Authorization": "bearer " + good})
	c.subscribePrivate()
	c.subscribe("/sub/socket/room/LOBBY1")
	c.send("ROOM_DETAIL", map[string]any{}, "roomId", "77")
	if ev := c.await(c.private, "ERROR"); ev.reason() != chat.Korean.T("room_not_found") {
		t.Fatalf("member connection: %s", ev.Raw)
	}
}

func TestCustomerConnectRefusals(t *testing.T) {
	e := newEnv(t)
	wantConnectRefused(t, e, map[string]string{"companyId": "9", "gasappMemberNumber": "1"}, "unknown companyId")
	wantConnectRefused(t, e, map[string]string{"companyId": "1"}, "invalid customer headers")
	wantConnectRefused(t, e, map[string]string{"companyId": "1", "gasappMemberNumber": "12a"}, "invalid customer headers")
	wantConnectRefused(t, e, map[string]string{"companyId": "x", "gasappMemberNumber": "12"}, "invalid customer headers")
	wantConnectRefused(t, e, map[string]string{}, "unauthorized")
	// Names are UTF-8 and kept as given.
	_, logined := e.customer("4001", "홍길동 👋")
	if got := jsonStr(t, logined.obj("data", "profile"), "name"); got != "홍길동 👋" {
		t.Fatalf("name = %q", got)
	}
}

func TestLegacySecretKey(t *testing.T) {
	e := newEnv(t, func(_ *chat.Config, c *chat.Company) { c.LegacyKeyPrefix = "SEOUL_" })
	// It is 15:31 on 2026-11-23 in Seoul; at 15:30 UTC it is already the 24th there.
	_, ok := e.customer("5001", "고객", "secretKey", "SEOUL_20261123")
	if jsonStr(t, ok.obj("data", "profile"), "roomId") == "" {
		t.Fatalf("LOGINED = %s", ok.Raw)
	}
	e.clock.Set(time.Date(2026, 11, 23, 15, 30, 0, 0, time.UTC))
	_, ok = e.customer("5001", "고객", "secretKey", "SEOUL_20261124")
	if ok.Name != "LOGINED" {
		t.Fatalf("Seoul date: %s", ok.Raw)
	}

	for _, key := range []string{"SEOUL_20261123", "", "WRONG_20261124"} {
		c := e.mustDial("bad key", map[string]string{"companyId": "1", "gasappMemberNumber": "5002", "secretKey": key})
		c.subscribePrivate()
		ev := c.await(c.private, "UNAUTHORIZED")
		prof := ev.obj("data", "profile")
		if prof == nil || prof["roomId"] != nil || jsonNum(t, prof, "isCustomer") != 1 || jsonStr(t, ev.M, "companyId") != "1" {
			t.Fatalf("UNAUTHORIZED = %s", ev.Raw)
		}
		// An unauthorized customer can do nothing else.
		c.subscribe("/sub/socket/room/1")
		if ev := c.await(c.private, "ERROR"); ev.reason() != chat.Korean.T("unauthorized") {
			t.Fatalf("unauthorized subscribe: %s", ev.Raw)
		}
		c.send("MESSAGE", map[string]any{"messageType": 0, "message": "x"}, "roomId", "1")
		if ev := c.await(c.private, "ERROR"); ev.reason() != chat.Korean.T("unauthorized") {
			t.Fatalf("unauthorized send: %s", ev.Raw)
		}
	}
}

func signature(secret, company, number string, ts int64) string {
	return hex.EncodeToString(chat.SignCustomer(secret, company, number, strconv.FormatInt(ts, 10)))
}

func TestSignedCustomers(t *testing.T) {
	const secret = "company-1-signing-secret"
	e := newEnv(t, func(_ *chat.Config, c *chat.Company) { c.SigningSecret, c.RequireSigned = secret, true })
	now := e.clock.Now().Unix()

	_, ok := e.customer("6001", "서명고객", "timestamp", strconv.FormatInt(now, 10), "signature", signature(secret, "1", "6001", now))
	if ok.Name != "LOGINED" {
		t.Fatalf("signed: %s", ok.Raw)
	}
	// Upper-case hex and a timestamp within the allowed skew are fine.
	past := now - 240
	_, ok = e.customer("6001", "서명고객", "timestamp", strconv.FormatInt(past, 10), "signature", strings.ToUpper(signature(secret, "1", "6001", past)))
	if ok.Name != "LOGINED" {
		t.Fatalf("signed 4 minutes ago: %s", ok.Raw)
	}

	bad := map[string][]string{
		"unsigned":         {},
		"wrong signature":  {"timestamp", strconv.FormatInt(now, 10), "signature", signature("other", "1", "6001", now)},
		"other number":     {"timestamp", strconv.FormatInt(now, 10), "signature", signature(secret, "1", "6002", now)},
		"expired":          {"timestamp", strconv.FormatInt(now-301, 10), "signature", signature(secret, "1", "6001", now-301)},
		"from the future":  {"timestamp", strconv.FormatInt(now+301, 10), "signature", signature(secret, "1", "6001", now+301)},
		"not hex":          {"timestamp", strconv.FormatInt(now, 10), "signature", "zz"},
		"bad timestamp":    {"timestamp", "soon", "signature", signature(secret, "1", "6001", now)},
		"legacy key alone": {"secretKey", "whatever"},
	}
	for name, extra := range bad {
		t.Run(name, func(t *testing.T) {
			h := map[string]string{"companyId": "1", "gasappMemberNumber": "6001"}
			for i := 0; i+1 < len(extra); i += 2 {
				h[extra[i]] = extra[i+1]
			}
			c := e.mustDial(name, h)
			c.subscribePrivate()
			c.await(c.private, "UNAUTHORIZED")
		})
	}

	// The server-wide switch makes signing mandatory for every company.
	e2 := newEnv(t, func(cfg *chat.Config, _ *chat.Company) { cfg.RequireSignedCustomers = true })
	c := e2.mustDial("unsigned", map[string]string{"companyId": "2", "gasappMemberNumber": "7001"})
	c.subscribePrivate()
	c.await(c.private, "UNAUTHORIZED")
}

func TestCustomerFromHeaders(t *testing.T) {
	e := newEnv(t, func(_ *chat.Config, c *chat.Company) { c.LegacyKeyPrefix = "K" })
	h := map[string]string{"companyId": "1", "gasappMemberNumber": "8001", "name": "업로더", "secretKey": "K20261123"}
	company, customer, err := e.svc.CustomerFromHeaders(t.Context(), func(k string) string { return h[k] })
	if err != nil || company.ID != 1 || customer.ID == 0 || customer.Name != "업로더" {
		t.Fatalf("CustomerFromHeaders = %v %v %v", company, customer, err)
	}
	h["secretKey"] = "K20261122"
	if _, _, err := e.svc.CustomerFromHeaders(t.Context(), func(k string) string { return h[k] }); !errors.Is(err, chat.ErrCustomerCredentials) {
		t.Fatalf("stale key: %v", err)
	}
	h["companyId"] = "5"
	if _, _, err := e.svc.CustomerFromHeaders(t.Context(), func(k string) string { return h[k] }); !errors.Is(err, chat.ErrUnknownCompany) {
		t.Fatalf("unknown company: %v", err)
	}
	h["companyId"], h["gasappMemberNumber"] = "1", "-1"
	if _, _, err := e.svc.CustomerFromHeaders(t.Context(), func(k string) string { return h[k] }); !errors.Is(err, chat.ErrBadCustomerHeaders) {
		t.Fatalf("bad number: %v", err)
	}
}
