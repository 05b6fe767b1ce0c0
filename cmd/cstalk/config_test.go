package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestServeConfigLayering(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want func(c serveConfig) bool
	}{
		{"defaults", nil, nil, func(c serveConfig) bool {
			return c.Addr == ":8080" && c.DB == "sqlite:./data/cstalk.db" && c.Redis == "" && !c.Demo && c.Zone == "Asia/Seoul"
		}},
		{"env over default", map[string]string{"CSTALK_ADDR": ":9000", "CSTALK_DEMO": "true", "CSTALK_SHUTDOWN_TIMEOUT": "3s"}, nil,
			func(c serveConfig) bool { return c.Addr == ":9000" && c.Demo && c.ShutdownTimeout == 3*time.Second }},
		{"flag over env", map[string]string{"CSTALK_ADDR": ":9000", "CSTALK_DEMO": "true"}, []string{"--addr", "127.0.0.1:7000", "--demo=false"},
			func(c serveConfig) bool { return c.Addr == "127.0.0.1:7000" && !c.Demo }},
		{"redis with secret", nil, []string{"--redis", "redis://127.0.0.1:6379/0", "--jwt-secret", "0123456789abcdef0123"},
			func(c serveConfig) bool { return c.Redis == "redis://127.0.0.1:6379/0" }},
		{"mysql", map[string]string{"CSTALK_DB": "mysql://root:@127.0.0.1:3306/test"}, nil,
			func(c serveConfig) bool { return c.DB == "mysql://root:@127.0.0.1:3306/test" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := parseServeConfig(tc.args, env(tc.env), &out)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestServeConfigRejects(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		message string
	}{
		{"unknown flag", nil, []string{"--nope"}, "flag provided but not defined"},
		{"bad bool env", map[string]string{"CSTALK_DEMO": "maybe"}, nil, "CSTALK_DEMO"},
		{"bad duration", nil, []string{"--shutdown-timeout", "soon"}, "not a duration"},
		{"bad db", nil, []string{"--db", "postgres://x"}, "want sqlite:PATH or mysql://"},
		{"redis without secret", nil, []string{"--redis", "redis://127.0.0.1:6379/0"}, "--jwt-secret is required"},
		{"bad redis url", nil, []string{"--redis", "127.0.0.1:6379", "--jwt-secret", "0123456789abcdef"}, "want redis://"},
		{"bad zone", nil, []string{"--zone", "Mars/Olympus"}, "--zone"},
		{"stray argument", nil, []string{"extra"}, "unexpected argument"},
		{"message above frame", nil, []string{"--max-frame-bytes", "2048", "--max-message-bytes", "4096"}, "below --max-frame-bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := parseServeConfig(tc.args, env(tc.env), &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tc.message) {
				t.Fatalf("want error containing %q, got %v (output %q)", tc.message, err, out.String())
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "cstalk "},
		{[]string{"serve", "--help"}, 0, "CSTALK_JWT_SECRET"},
		{[]string{"serve", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"serve", "--redis", "redis://x:1/0"}, 2, "--jwt-secret is required"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{nil, 2, "a command is required"},
		{[]string{"member", "add", "--login", "x"}, 2, "--company is required"},
		{[]string{"member"}, 2, "want add or list"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, env(nil), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("cstalk %v: exit %d, output %q; want exit %d containing %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.out)
		}
	}
}

func TestServeHelpListsEveryFlagWithEnvAndDefault(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--help"}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := stderr.String()
	cfg := defaultServeConfig()
	for _, o := range cfg.options() {
		if !strings.Contains(help, "--"+o.flag) || !strings.Contains(help, o.env) {
			t.Errorf("help lacks --%s / %s:\n%s", o.flag, o.env, help)
		}
	}
	if !strings.Contains(help, "(default :8080)") || !strings.Contains(help, "(default sqlite:./data/cstalk.db)") {
		t.Errorf("help lacks defaults:\n%s", help)
	}
}
