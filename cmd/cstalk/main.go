// Command cstalk is the customer counseling server: STOMP chat over SockJS,
// its REST API and web pages, in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// usageError marks a mistake in how cstalk was called: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cstalk: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "cstalk: %v\n", err)
		return 1
	}
}

const topUsage = `Usage: cstalk <command> [flags]

Commands:
  serve                     run the server (cstalk serve --help lists its flags)
  migrate                   apply database migrations and exit
  company set               add a company or change its customer authentication
  member add|list           manage counselors without the console
  licence set|list|remove   manage KnowledgeTalk licences (cpCode/authKey)
  version                   print the version
`

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usageError{errors.New("a command is required")}
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServeConfig(args[1:], getenv, stderr)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		return serve(ctx, cfg, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "company":
		return company(ctx, args[1:], getenv, stdout, stderr)
	case "member":
		return member(ctx, args[1:], getenv, stdout, stderr)
	case "licence":
		return licence(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "cstalk %s\n", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, topUsage)
		return nil
	default:
		fmt.Fprint(stderr, topUsage)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
}
