package sqlite

import (
	"database/sql"
	"time"
)

// Times are stored as INTEGER milliseconds since the Unix epoch (UTC), the
// unit of the wire contract. The zero time is stored as NULL, so "not set"
// never compares as a date in 1970 or year 1.

// ms returns t as a bind value: NULL for the zero time.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromMS turns a stored value back into a UTC time, zero for NULL.
func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// blob returns b as a bind value: NULL for a nil slice, so optional hashes
// read back as nil.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// boolInt stores a bool as 0 or 1.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
