package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestOpContextDeadlineWithoutWaiting(t *testing.T) {
	oc := newOpContext(context.Background(), time.Hour)
	defer oc.release()
	if dl, ok := oc.Deadline(); !ok || time.Until(dl) > time.Hour {
		t.Fatalf("Deadline = %v, %v", dl, ok)
	}
	if err := oc.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}

	// A deadline already passed, and nobody called Done: Err must see it,
	// and Done must agree.
	past := newOpContext(context.Background(), -time.Millisecond)
	defer past.release()
	if !errors.Is(past.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", past.Err())
	}
	select {
	case <-past.Done():
	default:
		t.Fatal("Err reports the deadline but Done is open")
	}
}

func TestOpContextDoneFiresAtDeadline(t *testing.T) {
	oc := newOpContext(context.Background(), 10*time.Millisecond)
	defer oc.release()
	<-oc.Done()
	if !errors.Is(oc.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", oc.Err())
	}
}

func TestOpContextFollowsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	oc := newOpContext(parent, time.Hour)
	defer oc.release()
	done := oc.Done()
	cancel()
	<-done
	if !errors.Is(oc.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", oc.Err())
	}

	// A parent cancelled before anyone waits shows in Err at once.
	parent2, cancel2 := context.WithCancel(context.Background())
	oc2 := newOpContext(parent2, time.Hour)
	defer oc2.release()
	cancel2()
	if !errors.Is(oc2.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", oc2.Err())
	}
}

func TestOpContextKeepsEarlierParentDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	oc := newOpContext(parent, time.Hour)
	defer oc.release()
	pd, _ := parent.Deadline()
	if dl, _ := oc.Deadline(); !dl.Equal(pd) {
		t.Fatalf("Deadline = %v, want the parent's %v", dl, pd)
	}
}

func TestOpContextRelease(t *testing.T) {
	oc := newOpContext(context.Background(), time.Hour)
	done := oc.Done()
	oc.release()
	<-done
	<-oc.Done()
	if oc.Err() == nil {
		t.Fatal("Err after release = nil")
	}
	type key struct{}
	vc := newOpContext(context.WithValue(context.Background(), key{}, 7), time.Hour)
	defer vc.release()
	if vc.Value(key{}) != 7 {
		t.Fatal("values of the parent are lost")
	}
}
