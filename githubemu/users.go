package githubemu

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// User is a GitHub account known to the emulator.
type User struct {
	// ID is GitHub's stable numeric id; AddUser assigns one when zero.
	ID    int64  `json:"id"`
	Login string `json:"login"`
	// Name, Email (the public email) and Company may be empty; /user then
	// answers null for them.
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	Company   string `json:"company,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
	// Emails is what /user/emails lists. When nil, AddUser gives the user
	// one verified primary address: Email if set, else login@example.com
	// (private, so /user shows no email). A non-nil empty slice means none.
	Emails []Email `json:"emails"`
}

// Email is one entry of /user/emails.
type Email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
	// Visibility is "public", "private" or "" (null on the wire).
	Visibility string `json:"visibility,omitempty"`
}

type userRecord struct {
	User
	created, updated time.Time
}

func (u User) clone() User {
	u.Emails = slices.Clone(u.Emails)
	return u
}

// hasVerifiedPrimary reports whether u has a verified primary email.
func (u User) hasVerifiedPrimary() bool {
	for _, m := range u.Emails {
		if m.Primary && m.Verified {
			return true
		}
	}
	return false
}

// AddUser creates or updates a user and returns it as stored. With ID 0 it
// updates the user holding the same login (case-insensitive) or creates one
// with a fresh id; with a known ID it replaces that user, so tests can change
// a login or an email. Empty Login and AvatarURL get defaults, and nil Emails
// gets one verified primary address (see User.Emails). Logins should be
// unique: a login taken by another id now points at this user.
func (e *Emulator) AddUser(u User) User {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addUserLocked(u)
}

func (e *Emulator) addUserLocked(u User) User {
	if u.ID == 0 {
		if id, ok := e.logins[strings.ToLower(u.Login)]; ok && u.Login != "" {
			u.ID = id
		} else {
			u.ID = e.nextID
		}
	}
	if u.ID >= e.nextID {
		e.nextID = u.ID + 1
	}
	if u.Login == "" {
		u.Login = fmt.Sprintf("user%d", u.ID)
	}
	if u.AvatarURL == "" {
		u.AvatarURL = fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", u.ID)
	}
	if u.Emails == nil {
		if u.Email != "" {
			u.Emails = []Email{{Email: u.Email, Primary: true, Verified: true, Visibility: "public"}}
		} else {
			u.Emails = []Email{{Email: strings.ToLower(u.Login) + "@example.com", Primary: true, Verified: true, Visibility: "private"}}
		}
	}
	u = u.clone()
	now := e.clock.Now().UTC()
	rec, ok := e.users[u.ID]
	if ok {
		if old := strings.ToLower(rec.Login); e.logins[old] == u.ID {
			delete(e.logins, old)
		}
		rec.User, rec.updated = u, now
	} else {
		rec = &userRecord{User: u, created: now, updated: now}
		e.users[u.ID] = rec
	}
	e.logins[strings.ToLower(u.Login)] = u.ID
	return u.clone()
}

// RemoveUser deletes a user, as when an account is deleted: every token
// pair of the user dies, and codes issued to it can no longer be exchanged.
func (e *Emulator) RemoveUser(id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.users[id]
	if !ok {
		return
	}
	if l := strings.ToLower(rec.Login); e.logins[l] == id {
		delete(e.logins, l)
	}
	delete(e.users, id)
	e.revokeUserLocked(id)
}

// userByLoginLocked returns the user with login, creating it with defaults
// when unknown.
func (e *Emulator) userByLoginLocked(login string) User {
	if id, ok := e.logins[strings.ToLower(login)]; ok {
		return e.users[id].clone()
	}
	return e.addUserLocked(User{Login: login})
}

// Users returns every known user, ordered by id.
func (e *Emulator) Users() []User {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]User, 0, len(e.users))
	for _, rec := range e.users {
		out = append(out, rec.clone())
	}
	slices.SortFunc(out, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// validLogin applies GitHub's rules for new logins: 1 to 39 letters, digits
// or single hyphens, not starting or ending with a hyphen.
func validLogin(s string) bool {
	if len(s) == 0 || len(s) > 39 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
