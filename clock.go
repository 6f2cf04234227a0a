package flashauth

import "time"

// Clock tells the time. Everything that depends on time takes one, so tests
// can move it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// UnixMilli returns t as milliseconds since the Unix epoch, the unit of every
// time value on the wire; the zero time is 0 ("does not expire").
func UnixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
