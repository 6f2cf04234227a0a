package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type item struct {
	n   int
	out int
}

// blocked returns a queue of one writer whose first batch waits for release,
// and a channel that receives every batch's values.
func blocked(t *testing.T) (q *Queue[item], batches chan []int, started chan struct{}, release func()) {
	t.Helper()
	batches = make(chan []int, 16)
	started = make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	first := true
	q = New(1, 8, func(b []*item) {
		if first {
			first = false
			close(started)
			<-gate
		}
		ns := make([]int, len(b))
		for i, it := range b {
			ns[i] = it.n
			it.out = it.n * 10
		}
		batches <- ns
	})
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { release(); q.Close() })
	return q, batches, started, release
}

func waitLen(t *testing.T, q *Queue[item], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d calls, want %d", q.Len(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueuedCallsRunInOneBatch: calls queued while a batch runs go to the
// next batch together, and each caller reads its own result.
func TestQueuedCallsRunInOneBatch(t *testing.T) {
	q, batches, started, release := blocked(t)
	go q.Do(context.Background(), &item{n: 1})
	<-started
	var wg sync.WaitGroup
	items := make([]*item, 5)
	for i := range items {
		items[i] = &item{n: i + 2}
		wg.Go(func() {
			if err := q.Do(context.Background(), items[i]); err != nil {
				t.Error(err)
			}
		})
	}
	waitLen(t, q, 5)
	release()
	wg.Wait()
	if got := <-batches; len(got) != 1 || got[0] != 1 {
		t.Fatalf("first batch %v, want [1]", got)
	}
	if got := <-batches; len(got) != 5 {
		t.Fatalf("second batch %v, want the 5 queued calls", got)
	}
	for _, it := range items {
		if it.out != it.n*10 {
			t.Errorf("item %d: out %d, want %d", it.n, it.out, it.n*10)
		}
	}
}

// TestAbandonedCallNeverRuns: a caller whose context ends while its call is
// queued gets the context's error, and its call is not in any batch.
func TestAbandonedCallNeverRuns(t *testing.T) {
	q, batches, started, release := blocked(t)
	go q.Do(context.Background(), &item{n: 1})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Do(ctx, &item{n: 2}) }()
	waitLen(t, q, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	third := make(chan error, 1)
	go func() { third <- q.Do(context.Background(), &item{n: 3}) }()
	waitLen(t, q, 2) // the abandoned call and the third, queued behind it
	release()
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	for got := range 2 {
		b := <-batches
		for _, n := range b {
			if n == 2 {
				t.Fatalf("batch %d holds the abandoned call: %v", got, b)
			}
		}
	}
}

// TestCloseDrainsAndRefuses: Close runs every call already queued, and Do
// after it answers ErrClosed.
func TestCloseDrainsAndRefuses(t *testing.T) {
	q, _, started, release := blocked(t)
	go q.Do(context.Background(), &item{n: 1})
	<-started
	it := &item{n: 7}
	done := make(chan error, 1)
	go func() { done <- q.Do(context.Background(), it) }()
	waitLen(t, q, 1)
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	for !q.Closed() {
		time.Sleep(time.Millisecond)
	}
	if err := q.Do(context.Background(), &item{n: 8}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
	release()
	<-closed
	if err := <-done; err != nil || it.out != 70 {
		t.Fatalf("queued call: err %v, out %d; want nil, 70", err, it.out)
	}
}
