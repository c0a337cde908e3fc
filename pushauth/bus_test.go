package pushauth_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bridge-idp/bridge/pushauth"
)

// woken reports whether a wake-up is waiting on c, taking it.
func woken(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestLocalBusWakesSubscribersOfTheTopic(t *testing.T) {
	b := pushauth.NewLocalBus()
	a1, cancelA1 := b.Subscribe("user:alice")
	defer cancelA1()
	a2, cancelA2 := b.Subscribe("user:alice")
	defer cancelA2()
	other, cancelOther := b.Subscribe("user:bob")
	defer cancelOther()

	if woken(a1) || woken(a2) || woken(other) {
		t.Fatal("woken before any publish")
	}
	if err := b.Publish(context.Background(), "user:alice"); err != nil {
		t.Fatal(err)
	}
	if !woken(a1) || !woken(a2) {
		t.Fatal("a subscriber of the published topic was not woken")
	}
	if woken(other) {
		t.Fatal("a subscriber of another topic was woken")
	}
}

func TestLocalBusCoalesces(t *testing.T) {
	b := pushauth.NewLocalBus()
	c, cancel := b.Subscribe("t")
	defer cancel()
	for range 5 {
		if err := b.Publish(context.Background(), "t"); err != nil {
			t.Fatal(err)
		}
	}
	if !woken(c) {
		t.Fatal("not woken after five publishes")
	}
	if woken(c) {
		t.Fatal("five publishes left more than one wake-up")
	}
	if err := b.Publish(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	if !woken(c) {
		t.Fatal("not woken by a publish after the wake-up was taken")
	}
}

func TestLocalBusCancel(t *testing.T) {
	b := pushauth.NewLocalBus()
	gone, cancelGone := b.Subscribe("t")
	kept, cancelKept := b.Subscribe("t")
	defer cancelKept()
	cancelGone()
	cancelGone() // twice is harmless
	b.Publish(context.Background(), "t")
	b.WakeAll()
	if woken(gone) {
		t.Fatal("a cancelled subscription was woken")
	}
	if !woken(kept) {
		t.Fatal("cancelling one subscription stopped another")
	}
	// The topic works again after its last subscriber left.
	cancelKept()
	again, cancelAgain := b.Subscribe("t")
	defer cancelAgain()
	b.Publish(context.Background(), "t")
	if !woken(again) {
		t.Fatal("a new subscription after the last one was cancelled is not woken")
	}
}

func TestLocalBusWakeAll(t *testing.T) {
	b := pushauth.NewLocalBus()
	var chans []<-chan struct{}
	for i := range 4 {
		c, cancel := b.Subscribe(fmt.Sprintf("topic-%d", i%2))
		defer cancel()
		chans = append(chans, c)
	}
	b.WakeAll()
	for i, c := range chans {
		if !woken(c) {
			t.Fatalf("subscriber %d not woken by WakeAll", i)
		}
	}
}

// TestLocalBusConcurrent subscribes, publishes, wakes everyone and
// cancels from many goroutines at once (run with -race). Publish wakes
// before it returns, so each goroutine's own publish must have reached it.
func TestLocalBusConcurrent(t *testing.T) {
	b := pushauth.NewLocalBus()
	var wg sync.WaitGroup
	errs := make(chan error, 64*50*2)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("t%d", i%8)
			for range 50 {
				c, cancel := b.Subscribe(topic)
				if i%16 == 0 {
					b.WakeAll()
				}
				if err := b.Publish(context.Background(), topic); err != nil {
					errs <- err
				}
				if !woken(c) {
					errs <- fmt.Errorf("goroutine %d: not woken by its own publish", i)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
