package ratelimit

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestLimiterTripsAndRecovers(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(1764120000000)}
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
	clk.t = clk.t.Add(time.Second)
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

func TestSweepBoundsMemory(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(1764120000000)}
	l := New(60, 1, clk)
	l.max = 10
	for i := range 100 {
		l.Allow(string(rune('a' + i%26)) + string(rune('A'+i/26)))
	}
	if n := len(l.buckets); n > 11 {
		t.Fatalf("%d buckets kept, bound is 10", n)
	}
}
