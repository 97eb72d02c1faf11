package keys

import (
	"context"
	"sync"
)

// broker fans events out to in-process subscribers (the embedded store's announcements, and the
// Redis store's after they arrive from pub/sub).
type broker struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func newBroker() *broker { return &broker{subs: make(map[chan Event]struct{})} }

func (b *broker) subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, 256)
	ch <- Event{Kind: EventResync}
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		close(ch)
		b.mu.Unlock()
	}()
	return ch
}

// publish delivers e to every subscriber. A subscriber whose buffer is full would otherwise miss a
// revocation, so it gets a Resync instead (drop everything), never silence.
func (b *broker) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			// Full: replace the oldest event with a resync so nothing is silently lost.
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- Event{Kind: EventResync}:
			default:
			}
		}
	}
}
