package main

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"
)

// maxLogBytes bounds the log kept per container instance; older lines are
// dropped first, as a kubelet's log rotation would.
const maxLogBytes = 4 << 20

// logLine is one line of a container's output and when it was written.
type logLine struct {
	time time.Time
	text []byte // including its '\n', except for a final partial line
}

// containerLog is the output of one container instance: an io.Writer for
// the process's stdout and stderr, and readers for GetContainerLogs and
// attach. Writes are split into lines; Close marks the instance terminated,
// which ends following readers. Safe for concurrent use.
type containerLog struct {
	mu      sync.Mutex
	lines   []logLine // lines[0] is line number base
	base    int
	bytes   int
	partial []byte // output after the last '\n'
	closed  bool
	changed chan struct{} // closed and replaced on every change
}

func newContainerLog() *containerLog {
	return &containerLog{changed: make(chan struct{})}
}

// Write appends process output.
func (l *containerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	data := append(l.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		l.appendLocked(logLine{now, append([]byte(nil), data[:i+1]...)})
		data = data[i+1:]
	}
	l.partial = append([]byte(nil), data...)
	l.notifyLocked()
	return len(p), nil
}

func (l *containerLog) appendLocked(line logLine) {
	l.lines = append(l.lines, line)
	l.bytes += len(line.text)
	for l.bytes > maxLogBytes && len(l.lines) > 1 {
		l.bytes -= len(l.lines[0].text)
		l.lines = l.lines[1:]
		l.base++
	}
}

func (l *containerLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Close ends the log: the last partial line is kept and followers stop.
func (l *containerLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if len(l.partial) > 0 {
		l.appendLocked(logLine{time.Now(), l.partial})
		l.partial = nil
	}
	l.closed = true
	l.notifyLocked()
	return nil
}

// logQuery is what a reader wants of the log.
type logQuery struct {
	follow     bool
	tail       int // 0: all lines; -1: none, only new output
	since      time.Time
	limitBytes int // 0: no limit
}

// Reader returns the log as bytes. Without follow it is a snapshot; with
// follow it continues with new output until the log is closed or ctx is done.
func (l *containerLog) Reader(ctx context.Context, q logQuery) io.ReadCloser {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.base
	if !q.since.IsZero() {
		for first < l.base+len(l.lines) && l.lines[first-l.base].time.Before(q.since) {
			first++
		}
	}
	switch {
	case q.tail < 0: // only what is written from now on
		first = l.base + len(l.lines)
	case q.tail > 0 && l.base+len(l.lines)-q.tail > first:
		first = l.base + len(l.lines) - q.tail
	}
	end := -1 // snapshot: stop at the current end
	if !q.follow {
		end = l.base + len(l.lines)
	}
	ctx, cancel := context.WithCancel(ctx)
	return &logReader{log: l, ctx: ctx, cancel: cancel, next: first, end: end, remaining: q.limitBytes}
}

// logReader reads lines next, next+1, ... of a containerLog. Used by one
// goroutine; Close may come from another.
type logReader struct {
	log       *containerLog
	ctx       context.Context
	cancel    context.CancelFunc
	next, end int
	pending   []byte
	remaining int // bytes left under limitBytes; 0 means unlimited
	limited   bool
}

func (r *logReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// fill loads the next line into pending, waiting for one when following.
func (r *logReader) fill() error {
	if r.limited || (r.end >= 0 && r.next >= r.end) {
		return io.EOF
	}
	r.log.mu.Lock()
	if r.next < r.log.base {
		r.next = r.log.base // dropped while we were reading
	}
	if i := r.next - r.log.base; i < len(r.log.lines) {
		r.pending = r.log.lines[i].text
		r.next++
		r.log.mu.Unlock()
		r.applyLimit()
		return nil
	}
	closed, changed := r.log.closed, r.log.changed
	r.log.mu.Unlock()
	if closed {
		return io.EOF
	}
	select {
	case <-changed:
		return nil
	case <-r.ctx.Done():
		return io.EOF
	}
}

func (r *logReader) applyLimit() {
	if r.remaining == 0 {
		return
	}
	if len(r.pending) >= r.remaining {
		r.pending = r.pending[:r.remaining]
		r.limited = true
		return
	}
	r.remaining -= len(r.pending)
}

func (r *logReader) Close() error {
	r.cancel()
	return nil
}
