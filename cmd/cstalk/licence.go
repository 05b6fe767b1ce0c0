package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cstalk/cstalk/chat"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
)

// licence manages the KnowledgeTalk licences (cpCode/authKey pairs) of
// companies.
func licence(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const synopsis = "cstalk licence set --company ID --cp-code CODE [--auth-key KEY] | " +
		"cstalk licence list [--company ID] | cstalk licence remove --cp-code CODE"
	if len(args) == 0 || (args[0] != "set" && args[0] != "list" && args[0] != "remove") {
		fmt.Fprintf(stderr, "Usage: %s\n", synopsis)
		return usageError{errors.New("licence: want set, list or remove")}
	}
	fs := flag.NewFlagSet("licence "+args[0], flag.ContinueOnError)
	db := dbFlag(fs, getenv)
	company := fs.Int64("company", 0, "company id")
	cpCode := fs.String("cp-code", "", "the licence's cpCode, as the clients send it")
	authKey := fs.String("auth-key", "", "the licence's authKey (set: generated and printed when empty)")
	if err := parseFlags(fs, args[1:], synopsis, stderr); err != nil {
		return err
	}
	switch {
	case args[0] == "set" && (*company <= 0 || *cpCode == ""):
		return usageError{errors.New("--company and --cp-code are required")}
	case args[0] == "remove" && *cpCode == "":
		return usageError{errors.New("--cp-code is required")}
	case *company < 0:
		return usageError{errors.New("--company must be positive")}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := openStore(ctx, *db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "list":
		list, err := st.KTLicences(ctx, *company)
		if err != nil {
			return err
		}
		for _, l := range list {
			fmt.Fprintf(stdout, "%d\t%s\t%s\n", l.CompanyID, l.CPCode, l.CreatedAt.Format(time.RFC3339))
		}
		return nil
	case "remove":
		if err := st.DeleteKTLicence(ctx, *cpCode); errors.Is(err, kt.ErrNotFound) {
			return usageError{fmt.Errorf("no licence %q", *cpCode)}
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "licence %s removed\n", *cpCode)
		return nil
	}
	if _, err := st.Company(ctx, *company); errors.Is(err, chat.ErrNotFound) {
		return usageError{fmt.Errorf("company %d does not exist", *company)}
	} else if err != nil {
		return err
	}
	key, generated := *authKey, false
	if key == "" {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		key, generated = base64.RawURLEncoding.EncodeToString(raw), true
	}
	l := &kt.Licence{CPCode: *cpCode, CompanyID: *company, AuthKeyHash: kt.HashAuthKey(key), CreatedAt: time.Now()}
	if err := st.SaveKTLicence(ctx, l); err != nil {
		return fmt.Errorf("licence set: %w", err)
	}
	fmt.Fprintf(stdout, "licence %s saved for company %d\n", l.CPCode, l.CompanyID)
	if generated {
		// Only the hash is stored: this is the one time the key is shown.
		fmt.Fprintf(stdout, "authKey: %s\n", key)
	}
	return nil
}
