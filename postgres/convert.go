package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Conversions between Go values and columns. Times are kept to the
// millisecond, the unit of the wire contract and of the SQLite store, so a
// value reads back exactly as it would from any store; Go's zero time is
// NULL. Optional strings are NULL when empty; pgx itself stores a nil
// []byte as NULL and reads NULL back as nil.

// tsArg is the column value of t.
func tsArg(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: time.UnixMilli(t.UnixMilli()).UTC(), Valid: true}
}

// tsVal is the Go value of a scanned timestamptz.
func tsVal(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// textArg is the column value of an optional string.
func textArg(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: s != ""}
}
