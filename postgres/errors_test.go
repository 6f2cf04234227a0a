package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/flashbacktech/flashauth"
)

func TestMapErr(t *testing.T) {
	// A pool that never connects: mapErr may reset it.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := &DB{pool: pool}

	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	pgErr := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }

	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		want    string // error code; "" for no *flashauth.Error
		wantIs  error
		wantNil bool
	}{
		{name: "nil", ctx: live, err: nil, wantNil: true},
		{name: "not found", ctx: live, err: flashauth.ErrNotFound, wantIs: flashauth.ErrNotFound},
		{name: "conflict", ctx: live, err: conflict(pgErr(codeUniqueViolation)), wantIs: flashauth.ErrConflict},
		{name: "claim lost", ctx: live, err: flashauth.ErrClaimLost, wantIs: flashauth.ErrClaimLost},
		{name: "unique violation elsewhere", ctx: live, err: pgErr(codeUniqueViolation)},
		{name: "not null violation", ctx: live, err: pgErr("23502")},
		{name: "admin shutdown", ctx: live, err: pgErr("57P01"), want: flashauth.CodeStoreUnavailable},
		{name: "crash shutdown", ctx: live, err: pgErr("57P02"), want: flashauth.CodeStoreUnavailable},
		{name: "cannot connect now", ctx: live, err: pgErr("57P03"), want: flashauth.CodeStoreUnavailable},
		{name: "too many connections", ctx: live, err: pgErr("53300"), want: flashauth.CodeStoreUnavailable},
		{name: "connection failure", ctx: live, err: pgErr("08006"), want: flashauth.CodeStoreUnavailable},
		{name: "connect error", ctx: live, err: &pgconn.ConnectError{}, want: flashauth.CodeStoreUnavailable},
		{name: "closed pool", ctx: live, err: puddle.ErrClosedPool, want: flashauth.CodeStoreUnavailable},
		{name: "conn closed", ctx: live, err: fmt.Errorf("x: %w", pgconn.ErrConnClosed), want: flashauth.CodeStoreUnavailable},
		{name: "unexpected EOF", ctx: live, err: io.ErrUnexpectedEOF, want: flashauth.CodeStoreUnavailable},
		{name: "store timeout", ctx: live, err: fmt.Errorf("x: %w", context.DeadlineExceeded), want: flashauth.CodeStoreUnavailable},
		{name: "caller gone", ctx: done, err: fmt.Errorf("x: %w", context.Canceled), wantIs: context.Canceled},
		{name: "caller deadline", ctx: done, err: fmt.Errorf("x: %w", context.DeadlineExceeded), wantIs: context.DeadlineExceeded},
		{name: "statement timeout", ctx: live, err: pgErr("57014"), want: flashauth.CodeStoreUnavailable},
		{name: "lock timeout", ctx: live, err: pgErr("55P03"), want: flashauth.CodeStoreUnavailable},
		{name: "serialization failure", ctx: live, err: pgErr("40001"), want: flashauth.CodeStoreUnavailable},
		{name: "deadlock victim", ctx: live, err: pgErr("40P01"), want: flashauth.CodeStoreUnavailable},
		{name: "statement canceled for a gone caller", ctx: done, err: pgErr("57014")},
		{name: "other", ctx: live, err: errors.New("boom")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := db.mapErr(tc.ctx, tc.err)
			if tc.wantNil {
				if got != nil {
					t.Fatalf("mapErr = %v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("mapErr = nil")
			}
			var fe *flashauth.Error
			isDomain := errors.As(got, &fe)
			switch {
			case tc.want == "" && isDomain:
				t.Errorf("mapErr = %v, want no *flashauth.Error", got)
			case tc.want != "" && (!isDomain || fe.Code != tc.want):
				t.Errorf("mapErr = %v, want code %s", got, tc.want)
			case tc.want != "" && (fe.RetryAfter <= 0 || fe.Message == ""):
				t.Errorf("mapErr = %+v, want a message and RetryAfter", fe)
			}
			if tc.wantIs != nil && !errors.Is(got, tc.wantIs) {
				t.Errorf("mapErr = %v, want errors.Is %v", got, tc.wantIs)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("mapErr = %v lost its cause %v", got, tc.err)
			}
		})
	}
}
