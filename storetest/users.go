package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

func testUsers(t *testing.T, open func(*testing.T) flashauth.Store) {
	first := flashauth.User{
		ID: "u1", GitHubID: 583231, Login: "octocat", Email: "octocat@github.com",
		Name: "The Octocat", ImageURL: "https://avatars.githubusercontent.com/u/583231",
		CreatedAt: base, UpdatedAt: base,
	}
	org := flashauth.Organization{ID: "o1", Name: "GitHub", CreatedAt: base}

	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"first sign-in creates user and organization", func(t *testing.T, st flashauth.Store) {
			got, created, err := st.UpsertGitHubUser(t.Context(), first, org)
			must(t, "UpsertGitHubUser", err)
			if !created {
				t.Error("created = false on first sign-in")
			}
			want := first
			want.OrgID = org.ID
			diff(t, "returned user", want, got)
			stored, err := st.GetUser(t.Context(), "u1")
			must(t, "GetUser", err)
			diff(t, "stored user", want, stored)
			gotOrg, err := st.GetOrganization(t.Context(), "o1")
			must(t, "GetOrganization", err)
			diff(t, "organization", org, gotOrg)
		}},
		{"later sign-in updates profile and keeps identity", func(t *testing.T, st flashauth.Store) {
			_, _, err := st.UpsertGitHubUser(t.Context(), first, org)
			must(t, "first UpsertGitHubUser", err)
			again := flashauth.User{
				ID: "u-other", GitHubID: first.GitHubID, Login: "octocat-renamed", Email: "new@example.com",
				Name: "Mona", ImageURL: "https://avatars.example.com/new", OrgID: "o-other",
				CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour),
			}
			got, created, err := st.UpsertGitHubUser(t.Context(), again,
				flashauth.Organization{ID: "o-other", Name: "Other", CreatedAt: at(time.Hour)})
			must(t, "second UpsertGitHubUser", err)
			if created {
				t.Error("created = true on a later sign-in")
			}
			want := flashauth.User{
				ID: "u1", GitHubID: first.GitHubID, Login: "octocat-renamed", Email: "new@example.com",
				Name: "Mona", ImageURL: "https://avatars.example.com/new", OrgID: "o1",
				CreatedAt: base, UpdatedAt: at(time.Hour),
			}
			diff(t, "returned user", want, got)
			stored, err := st.GetUser(t.Context(), "u1")
			must(t, "GetUser", err)
			diff(t, "stored user", want, stored)
			_, err = st.GetUser(t.Context(), "u-other")
			wantErr(t, "GetUser of the unused id", err, flashauth.ErrNotFound)
			_, err = st.GetOrganization(t.Context(), "o-other")
			wantErr(t, "GetOrganization of the unused org", err, flashauth.ErrNotFound)
		}},
		{"different GitHub users are different users", func(t *testing.T, st flashauth.Store) {
			a := fixtureUser(t, st, "ua", 1)
			b := fixtureUser(t, st, "ub", 2)
			if a.ID == b.ID || a.OrgID == b.OrgID {
				t.Errorf("users share identity: %+v %+v", a, b)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}

	t.Run("concurrent first sign-ins", func(t *testing.T) {
		st := open(t)
		const n = 20
		type result struct {
			user    flashauth.User
			created bool
			err     error
		}
		results := concurrently(n, func(i int) result {
			u := first
			u.ID = fmt.Sprintf("u-%02d", i)
			o := flashauth.Organization{ID: fmt.Sprintf("o-%02d", i), Name: "GitHub", CreatedAt: base}
			got, created, err := st.UpsertGitHubUser(t.Context(), u, o)
			return result{got, created, err}
		})
		winner := -1
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("sign-in %d: %v", i, r.err)
			}
			if r.created {
				if winner >= 0 {
					t.Fatalf("sign-ins %d and %d both created the user", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no sign-in created the user")
		}
		wantID, wantOrg := fmt.Sprintf("u-%02d", winner), fmt.Sprintf("o-%02d", winner)
		for i, r := range results {
			if r.user.ID != wantID || r.user.OrgID != wantOrg {
				t.Errorf("sign-in %d got user %q org %q, want %q %q", i, r.user.ID, r.user.OrgID, wantID, wantOrg)
			}
		}
		for i := range n {
			_, err := st.GetOrganization(t.Context(), fmt.Sprintf("o-%02d", i))
			if i == winner {
				must(t, "GetOrganization of the winner", err)
			} else {
				wantErr(t, fmt.Sprintf("GetOrganization of loser %d", i), err, flashauth.ErrNotFound)
			}
		}
	})
}
