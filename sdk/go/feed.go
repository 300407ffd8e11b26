package sdk

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// PodStatusFeed fans pod status changes out to the open WatchPodStatus
// streams.
//
// Publish every status change of a pod (the whole status) and
// PublishDeleted when the provider forgets a pod after DeletePod. Each
// subscriber holds at most one pending event per pod — a newer one replaces
// the older in place, keeping the pod's position — so a slow stream gets the
// latest status of each pod, in order per pod, and memory stays bounded by
// the number of pods. A DELETED event replacing an unsent STATUS keeps that
// status (spec.md §5.3.4).
//
// The zero value is ready to use. Safe for concurrent use; Publish is cheap
// when no stream is open and never blocks on a slow reader. Published
// messages are cloned; the caller keeps ownership.
type PodStatusFeed struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Publish announces the whole current status of one pod.
func (f *PodStatusFeed) Publish(status *v1.PodStatus) {
	f.broadcast(&v1.WatchPodStatusResponse{
		Type:   v1.WatchPodStatusResponse_TYPE_STATUS,
		Status: proto.Clone(status).(*v1.PodStatus),
	})
}

// PublishDeleted announces that the provider forgot the pod.
func (f *PodStatusFeed) PublishDeleted(ref *v1.PodRef) {
	f.broadcast(&v1.WatchPodStatusResponse{
		Type:   v1.WatchPodStatusResponse_TYPE_DELETED,
		Status: &v1.PodStatus{Pod: proto.Clone(ref).(*v1.PodRef)},
	})
}

func (f *PodStatusFeed) broadcast(event *v1.WatchPodStatusResponse) {
	// Held while pushing so every subscriber sees one publication order.
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		sub.push(event)
	}
}

// Subscribe returns a reader of the events published from now on. Close it
// when done.
func (f *PodStatusFeed) Subscribe() *Subscription {
	sub := &Subscription{
		feed:    f,
		pending: map[string]*v1.WatchPodStatusResponse{},
		ready:   make(chan struct{}, 1),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[*Subscription]struct{}{}
	}
	f.subs[sub] = struct{}{}
	return sub
}

// Subscription is one reader of a PodStatusFeed: the SDK's WatchPodStatus
// handler, or a test. Next is called by one goroutine at a time; Close may be
// called from any goroutine.
type Subscription struct {
	feed  *PodStatusFeed
	ready chan struct{} // holds a token while events may be pending

	mu      sync.Mutex
	order   []string // UIDs with a pending event, oldest first, each once
	pending map[string]*v1.WatchPodStatusResponse
}

func (s *Subscription) push(event *v1.WatchPodStatusResponse) {
	uid := event.GetStatus().GetPod().GetUid()
	s.mu.Lock()
	if slot, ok := s.pending[uid]; ok {
		if event.Type == v1.WatchPodStatusResponse_TYPE_DELETED &&
			slot.Type == v1.WatchPodStatusResponse_TYPE_STATUS {
			slot.Type = v1.WatchPodStatusResponse_TYPE_DELETED
		} else {
			s.pending[uid] = event
		}
	} else {
		s.order = append(s.order, uid)
		s.pending[uid] = event
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default: // a token is already there
	}
}

// Next returns the next event (TYPE_STATUS or TYPE_DELETED), waiting for one
// until ctx is done, in which case it returns ctx.Err().
func (s *Subscription) Next(ctx context.Context) (*v1.WatchPodStatusResponse, error) {
	for {
		if event := s.pop(); event != nil {
			return event, nil
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *Subscription) pop() *v1.WatchPodStatusResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return nil
	}
	uid := s.order[0]
	s.order = s.order[1:]
	event := s.pending[uid]
	delete(s.pending, uid)
	return event
}

// Close stops delivery to this subscription.
func (s *Subscription) Close() {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	delete(s.feed.subs, s)
}
