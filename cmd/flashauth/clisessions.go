package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/flashbacktech/flashauth/client"
)

// runSessions lists the user's flashauth sessions (GET /token), or with
// `revoke ID` revokes one (DELETE /token/{id}).
func runSessions(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	revoke := ""
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprint(stdout, sessionsUsage)
		return nil
	case len(args) == 0:
	case args[0] == "revoke" && len(args) == 2 && args[1] != "":
		revoke = args[1]
	case args[0] == "revoke":
		return errors.New("sessions revoke: want one session id (see `flashauth sessions`)")
	default:
		return fmt.Errorf("sessions: unexpected argument %q (usage: sessions [revoke ID])", args[0])
	}
	path, st, c, err := signedIn(getenv)
	if err != nil {
		return err
	}
	// withAccess runs f with a valid access JWT, refreshing the session
	// once more if the server says the stored one is no longer accepted.
	withAccess := func(f func(access string) error) error {
		access, err := sessionAccessToken(ctx, c, st, path, false)
		if err != nil {
			return err
		}
		err = f(access)
		if client.Code(err) != client.CodeAuthRequired {
			return err
		}
		if access, err = sessionAccessToken(ctx, c, st, path, true); err != nil {
			return err
		}
		return f(access)
	}

	if revoke != "" {
		err := withAccess(func(access string) error { return c.RevokeSession(ctx, access, revoke) })
		if err != nil {
			if client.Code(err) == client.CodeNotFound {
				return fmt.Errorf("sessions revoke: no session %q among yours", revoke)
			}
			return explain("sessions revoke", err)
		}
		fmt.Fprintf(stdout, "Revoked session %s.\n", clip(revoke, 100))
		if revoke == st.Session.ID {
			if err := removeState(path); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "That was this session: signed out.")
		}
		return nil
	}

	var list []client.SessionInfo
	err = withAccess(func(access string) error {
		var err error
		list, err = c.Sessions(ctx, access)
		return err
	})
	if err != nil {
		return explain("sessions", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCURRENT\tCREATED\tLAST USED\tEXPIRES\tDEVICE\tIP")
	for _, s := range list {
		cur := ""
		if s.Current {
			cur = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clip(s.ID, 100), cur, stamp(s.CreatedAt), stamp(s.LastUsedAt), stamp(s.ExpiresAt),
			clip(device(s), 60), clip(s.IPAddress, 64))
	}
	return tw.Flush()
}

// device names a session's device: the name in its device info, else its
// user agent.
func device(s client.SessionInfo) string {
	var di struct {
		Name   string `json:"name"`
		Client string `json:"client"`
	}
	if json.Unmarshal(s.DeviceInfo, &di) == nil && (di.Name != "" || di.Client != "") {
		if di.Name != "" && di.Client != "" {
			return di.Client + " on " + di.Name
		}
		return di.Client + di.Name
	}
	if s.UserAgent != "" {
		return s.UserAgent
	}
	return "-"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// runLogout ends the session at flashauth (POST /user/logout) and deletes
// the session file. If flashauth cannot be reached, the file is kept so
// that the session can still be ended.
func runLogout(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, logoutUsage)
		return nil
	}
	if len(args) > 0 {
		return fmt.Errorf("logout takes no arguments, got %q", args[0])
	}
	path, st, c, err := signedIn(getenv)
	if err != nil {
		return err
	}
	// A session that is already dead is as logged out as it gets.
	if err := c.Logout(ctx, st.Session.RefreshToken); err != nil && !client.IsReauthRequired(err) {
		return fmt.Errorf("logout: %w (the session file is kept; try again)", err)
	}
	if err := removeState(path); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Signed out.")
	return nil
}

func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("session file: %w", err)
	}
	return nil
}

const sessionsUsage = `usage: flashauth sessions [revoke ID]

Lists the flashauth sessions of the signed-in user (newest first; * marks this one),
or revokes one of them by id. The session file comes from flashauth login.
`

const logoutUsage = `usage: flashauth logout

Ends this session at the server and deletes the session file.
`

// isHelp reports whether arg asks for a command's usage.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }
