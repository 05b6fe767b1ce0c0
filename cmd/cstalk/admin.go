package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/store"
)

// openStore opens and migrates the store named by --db or CSTALK_DB.
func openStore(ctx context.Context, dsn string, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, dsn, log)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	return st, nil
}

func dbFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := defaultServeConfig().DB
	if v := getenv("CSTALK_DB"); v != "" {
		def = v
	}
	return fs.String("db", def, "store (env CSTALK_DB): sqlite:PATH or mysql://user:pass@host:port/dbname")
}

func parseFlags(fs *flag.FlagSet, args []string, synopsis string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", synopsis)
		flagHelp(stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	db := dbFlag(fs, getenv)
	if err := parseFlags(fs, args, "cstalk migrate [--db DSN]", stderr); err != nil {
		return err
	}
	st, err := openStore(ctx, *db, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// company adds a tenant or changes its customer-authentication settings.
func company(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const synopsis = "cstalk company set --id ID [--name NAME] [--legacy-key-prefix P] [--signing-secret S] [--require-signed=true|false] [--contracts-url URL]"
	if len(args) == 0 || args[0] != "set" {
		fmt.Fprintf(stderr, "Usage: %s\n", synopsis)
		return usageError{errors.New("company: want set")}
	}
	fs := flag.NewFlagSet("company set", flag.ContinueOnError)
	db := dbFlag(fs, getenv)
	id := fs.Int64("id", 0, "company id")
	name := fs.String("name", "", "company name (required for a new company)")
	prefix := fs.String("legacy-key-prefix", "", "customers' secretKey must be this prefix + today's YYYYMMDD")
	secret := fs.String("signing-secret", "", "HMAC key of the signed customer CONNECT mode")
	requireSigned := fs.Bool("require-signed", false, "refuse this company's customers that do not sign")
	contractsURL := fs.String("contracts-url", "", "the company's endpoint the console's customer contracts come from (http(s) URL; empty: none)")
	if err := parseFlags(fs, args[1:], synopsis, stderr); err != nil {
		return err
	}
	if *id <= 0 {
		return usageError{errors.New("--id is required")}
	}
	if err := chat.CheckContractsURL(*contractsURL); err != nil {
		return usageError{fmt.Errorf("--contracts-url: %w", err)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := openStore(ctx, *db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.Company(ctx, *id)
	switch {
	case errors.Is(err, chat.ErrNotFound):
		if *name == "" {
			return usageError{fmt.Errorf("company %d does not exist: --name is required to create it", *id)}
		}
		c = &chat.Company{ID: *id}
	case err != nil:
		return err
	}
	if set["name"] {
		c.Name = *name
	}
	if set["legacy-key-prefix"] {
		c.LegacyKeyPrefix = *prefix
	}
	if set["signing-secret"] {
		c.SigningSecret = *secret
	}
	if set["require-signed"] {
		c.RequireSigned = *requireSigned
	}
	if set["contracts-url"] {
		c.ContractsURL = *contractsURL
	}
	if c.RequireSigned && c.SigningSecret == "" {
		return usageError{errors.New("--require-signed needs a --signing-secret")}
	}
	if err := st.SaveCompany(ctx, c); err != nil {
		return fmt.Errorf("company set: %w", err)
	}
	fmt.Fprintf(stdout, "company %d (%s) saved\n", c.ID, c.Name)
	return nil
}

func member(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const synopsis = "cstalk member add --company ID --login NAME --password PW [--name NAME] [--admin] | cstalk member list --company ID"
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprintf(stderr, "Usage: %s\n", synopsis)
		return usageError{errors.New("member: want add or list")}
	}
	fs := flag.NewFlagSet("member "+args[0], flag.ContinueOnError)
	db := dbFlag(fs, getenv)
	company := fs.Int64("company", 0, "company id")
	login := fs.String("login", "", "login name")
	password := fs.String("password", "", "password (at least 8 characters)")
	name := fs.String("name", "", "display name (default: the login name)")
	admin := fs.Bool("admin", false, "make the counselor the company's administrator")
	if err := parseFlags(fs, args[1:], synopsis, stderr); err != nil {
		return err
	}
	if *company <= 0 {
		return usageError{errors.New("--company is required")}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := openStore(ctx, *db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := chat.DefaultConfig()
	// Admin commands issue no tokens; a throwaway key keeps chat.New honest.
	cfg.JWTSecret = make([]byte, 32)
	if _, err := rand.Read(cfg.JWTSecret); err != nil {
		return err
	}
	svc, err := chat.New(cfg, st, log)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		members, err := st.Members(ctx, *company)
		if err != nil {
			return err
		}
		for _, m := range members {
			role := "counselor"
			if m.IsAdmin {
				role = "admin"
			}
			fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\n", m.ID, m.LoginName, m.Name, role)
		}
		return nil
	}
	if *login == "" || *password == "" {
		return usageError{errors.New("--login and --password are required")}
	}
	if *name == "" {
		*name = *login
	}
	m, err := svc.AddMember(ctx, *company, *login, *password, *name, *admin)
	if err != nil {
		return fmt.Errorf("member add: %w", err)
	}
	fmt.Fprintf(stdout, "added member %d (%s) to company %d\n", m.ID, m.LoginName, m.CompanyID)
	return nil
}
