//go:build linux

package cgroupv2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Watcher follows a container cgroup's event counters (OOM kills, refused
// forks, populated, frozen) with inotify(7): the kernel notifies a modify
// on memory.events, pids.events and cgroup.events when they change
// (cgroup-v2.rst). It keeps the last counters it read, which matters for a
// systemd scope: once the init is gone the scope is empty, systemd stops it
// and the cgroup with its counters disappears, so reading memory.events
// after the wait can find nothing. Start it before the init runs code.
type Watcher struct {
	f    *os.File
	l    leaf
	mu   sync.Mutex
	last Events
	err  error
	done chan struct{}
	ch   chan Events
}

// Watch starts a Watcher on the container cgroup. C delivers each change
// (latest only when the reader is slow); Last returns the latest counters.
func (l leaf) Watch() (*Watcher, error) {
	if l.path == "" {
		return nil, ErrNoCgroup
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watching cgroup events: inotify_init1: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close wakes a pending Read
	for _, name := range []string{"cgroup.events", "memory.events", "pids.events"} {
		_, err := unix.InotifyAddWatch(fd, filepath.Join(l.path, name), unix.IN_MODIFY)
		if err != nil && !(name != "cgroup.events" && errors.Is(err, unix.ENOENT)) {
			f.Close()
			return nil, fmt.Errorf("watching %s/%s: %w", l.path, name, err)
		}
	}
	w := &Watcher{f: f, l: l, done: make(chan struct{}), ch: make(chan Events, 1)}
	w.refresh()
	go w.loop()
	return w, nil
}

func (w *Watcher) refresh() {
	ev, err := w.l.Events()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = err
		return
	}
	w.last = *ev
	select {
	case <-w.ch:
	default:
	}
	w.ch <- *ev
}

func (w *Watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return
		}
		w.refresh()
	}
}

// C delivers the counters after each change.
func (w *Watcher) C() <-chan Events { return w.ch }

// Last returns the latest counters read while the cgroup existed.
func (w *Watcher) Last() Events {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Close stops watching.
func (w *Watcher) Close() error {
	err := w.f.Close()
	<-w.done
	return err
}
