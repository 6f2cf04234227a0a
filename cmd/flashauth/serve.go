package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/logging"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return start(ctx, c, stdout, stderr, startOptions{})
}

// startOptions are what dev adds to serve.
type startOptions struct {
	listener net.Listener                    // serve here instead of listening on c.Addr
	wrap     func(http.Handler) http.Handler // wraps the app's handler (dev's demo pages)
	banner   func(base string)               // prints after the address
}

// start listens on c.Addr (or takes opts.listener), then opens the app for
// c, prints the address (and whatever the banner prints), and serves until
// ctx is done. The port comes first: a process that cannot have it (address
// already in use) must fail before it creates or migrates a database or
// generates a signing key.
func start(ctx context.Context, c app.Config, stdout, stderr io.Writer, opts startOptions) error {
	level, err := logging.ParseLevel(c.LogLevel)
	if err != nil {
		return fmt.Errorf("FLASHAUTH_LOG_LEVEL: %v", err)
	}
	log := logging.New(stderr, c.LogFormat, level)
	c.Version = versionString()
	ln := opts.listener
	if ln == nil {
		if ln, err = net.Listen("tcp", c.Addr); err != nil {
			return fmt.Errorf("FLASHAUTH_ADDR: %v", err)
		}
	}
	defer ln.Close() // Serve closes it too; this covers a failed app.New
	a, err := app.New(ctx, c, log, flashauth.SystemClock{})
	if err != nil {
		return err
	}
	defer a.Close()
	if opts.wrap != nil {
		a.Handler = opts.wrap(a.Handler)
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	fmt.Fprintf(stdout, "flashauth listening on %s\n", base)
	if opts.banner != nil {
		opts.banner(base)
	}
	return a.Serve(ctx, ln, c)
}
