package ratelimit

import (
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

func TestLimiterTripsAndRecovers(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(1764120000000))
	l := New(60, 3, clk) // one per second, bursts of 3
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d refused inside the burst", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th event: ok=%v wait=%v, want refused with wait in (0,1s]", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	clk.Advance(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("not recovered after one interval")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("refill gave more than one event")
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter = New(0, 5, nil)
	if l != nil {
		t.Fatal("New(0) should disable")
	}
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestBucketsBounded(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(1764120000000))
	l := New(60, 1, clk)
	l.max = 10
	for i := range 100 {
		l.Allow(string(rune('a'+i%26)) + string(rune('A'+i/26)))
	}
	if n := len(l.buckets); n != 10 || l.recency.Len() != 10 {
		t.Fatalf("%d buckets kept (%d in the recency list), bound is 10", n, l.recency.Len())
	}
}

// A flood of fresh keys evicts the least recently seen bucket, not an
// arbitrary one: an abuser that keeps hammering stays limited.
func TestEvictsLeastRecentlySeen(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(1764120000000))
	l := New(1, 1, clk) // one per minute
	l.max = 3
	if ok, _ := l.Allow("abuser"); !ok {
		t.Fatal("first event refused")
	}
	l.Allow("b")
	l.Allow("c")
	if ok, _ := l.Allow("abuser"); ok { // seen again: now the most recent
		t.Fatal("abuser allowed twice within a minute")
	}
	for _, k := range []string{"d", "e"} {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("fresh key %s refused", k)
		}
	}
	if ok, _ := l.Allow("abuser"); ok {
		t.Fatal("the abuser's bucket was evicted by fresh keys")
	}
	if n := len(l.buckets); n != 3 || l.recency.Len() != 3 {
		t.Fatalf("%d buckets (%d in the recency list), bound is 3", n, l.recency.Len())
	}
	if _, ok := l.buckets["b"]; ok {
		t.Fatal("b, the least recently seen, was kept")
	}
}

// Buckets idle long enough to be full again are forgotten, and forgetting
// them changes no answer.
func TestIdleBucketsDropped(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(1764120000000))
	l := New(60, 2, clk) // full again after 2s idle
	l.Allow("a")
	l.Allow("a")
	if ok, wait := l.Allow("a"); ok || wait != time.Second {
		t.Fatalf("third event: ok=%v wait=%v, want refused for 1s", ok, wait)
	}
	clk.Advance(l.idle + time.Millisecond)
	l.Allow("b")
	if _, ok := l.buckets["a"]; ok {
		t.Fatal("idle bucket kept")
	}
	for i := range 2 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d of a fresh burst refused", i)
		}
	}
}
