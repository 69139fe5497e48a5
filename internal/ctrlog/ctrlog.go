package ctrlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// TimeFormat is the entries' timestamp: RFC 3339, nanoseconds always nine
// digits, a numeric zone (conmon's "%Y-%m-%dT%H:%M:%S.%N%:z").
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// The streams and tags of an entry.
const (
	Stdout  = "stdout"
	Stderr  = "stderr"
	Full    = "F"
	Partial = "P"
)

// Entry is one line of the log.
type Entry struct {
	Time    time.Time
	Stream  string
	Partial bool
	Msg     []byte // without the newline
}

// Log is a log file being written: its streams' Writers share it, each
// entry written in one Write, in the order the streams' Writes came.
type Log struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	err error
}

// New returns a Log that writes to w with timestamps from now (time.Now
// when nil).
func New(w io.Writer, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{w: w, now: now}
}

// Stream returns the io.Writer of one stream (Stdout or Stderr). Each
// Write becomes entries at once, as conmon writes what each read gave: a
// full entry for every line it ends, and a partial one for the text after
// its last newline, which the next Write continues.
func (l *Log) Stream(name string) io.Writer { return streamWriter{l, name} }

// Err is the first error writing the log met; later writes are dropped
// (the container's output is not blocked by a full disk).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

type streamWriter struct {
	l    *Log
	name string
}

func (s streamWriter) Write(p []byte) (int, error) {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || len(p) == 0 {
		return len(p), nil
	}
	ts := l.now().Format(TimeFormat)
	var buf bytes.Buffer
	for rest := p; len(rest) > 0; {
		tag, line := Full, rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			tag, rest = Partial, nil
		}
		buf.WriteString(ts)
		buf.WriteByte(' ')
		buf.WriteString(s.name)
		buf.WriteByte(' ')
		buf.WriteString(tag)
		buf.WriteByte(' ')
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if _, err := l.w.Write(buf.Bytes()); err != nil {
		l.err = fmt.Errorf("writing the container's log: %w", err)
	}
	return len(p), nil
}

// MaxLine bounds what the reader holds of one line: a longer one (a
// container printing without a newline) is handed on in pieces of about
// MaxLine bytes as they come, each but the last a partial Line, so that
// `logs` never holds a line whole (podman's reader prints each partial
// entry as it is). --tail counts each piece as a line.
const MaxLine = 1 << 20

// ErrMalformed is a line that is not a k8s-file entry.
var ErrMalformed = errors.New("not a k8s-file log entry")

// Parse reads one line of the log (without its newline).
func Parse(line []byte) (Entry, error) {
	var e Entry
	f := bytes.SplitN(line, []byte{' '}, 4)
	if len(f) < 3 {
		return e, fmt.Errorf("%w: %q", ErrMalformed, line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return e, fmt.Errorf("%w: timestamp %q", ErrMalformed, f[0])
	}
	e.Time, e.Stream = t, string(f[1])
	switch string(f[2]) {
	case Full:
	case Partial:
		e.Partial = true
	default:
		return e, fmt.Errorf("%w: tag %q", ErrMalformed, f[2])
	}
	if e.Stream != Stdout && e.Stream != Stderr {
		return e, fmt.Errorf("%w: stream %q", ErrMalformed, f[1])
	}
	if len(f) == 4 {
		e.Msg = f[3]
	}
	return e, nil
}

// Options choose what Read prints.
type Options struct {
	// Tail, when >= 0, keeps the last Tail lines only (a line: the
	// entries up to a full one); -1 keeps all.
	Tail int
	// Since drops the lines that began before it (zero: none dropped).
	Since time.Time
	// Timestamps prefixes each line with its first entry's timestamp, as
	// podman logs -t.
	Timestamps bool
	// Follow leaves the unfinished lines to the follower (Scanner.Copy,
	// then Scanner.Flush once the writer is gone) instead of printing them.
	Follow bool
}

// Line is one line of the container's output: the entries that make it,
// joined; Partial when it has not ended (yet).
type Line struct {
	Time    time.Time
	Stream  string
	Msg     []byte
	Partial bool
	// Continued is the rest of a line whose start came before, in a
	// piece of its own (MaxLine): it is printed without a timestamp.
	Continued bool
}

// Format writes l as podman logs prints it.
func (l Line) Format(w io.Writer, timestamps bool) error {
	var buf bytes.Buffer
	if timestamps && !l.Continued {
		buf.WriteString(l.Time.Format(TimeFormat))
		buf.WriteByte(' ')
	}
	buf.Write(l.Msg)
	if !l.Partial {
		buf.WriteByte('\n')
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Scanner joins a log's entries into lines, per stream: stdout's partial
// entries continue with stdout's next entry, whatever stderr wrote in
// between. Malformed lines are skipped (a log cut by a crash mid-line).
type Scanner struct {
	open map[string]*Line // a stream's line not ended yet
}

// NewScanner returns an empty Scanner.
func NewScanner() *Scanner { return &Scanner{open: map[string]*Line{}} }

// Add takes one log line and returns the line it ends, if any, or the
// piece of a line that reached MaxLine (Partial).
func (s *Scanner) Add(raw []byte) (Line, bool) {
	e, err := Parse(raw)
	if err != nil {
		return Line{}, false
	}
	cur := s.open[e.Stream]
	if cur == nil {
		cur = &Line{Time: e.Time, Stream: e.Stream}
	}
	cur.Msg = append(cur.Msg, e.Msg...)
	if !e.Partial {
		delete(s.open, e.Stream)
		return *cur, true
	}
	if len(cur.Msg) >= MaxLine {
		// Handed on as it is: the rest continues it, with its time.
		piece := *cur
		piece.Partial = true
		s.open[e.Stream] = &Line{Time: cur.Time, Stream: cur.Stream, Continued: true}
		return piece, true
	}
	s.open[e.Stream] = cur
	return Line{}, false
}

// Read prints the lines of the log r as o says. The lines r leaves
// unfinished (a partial entry's line, still being written, or the last
// output of a container that did not end it with a newline) are printed
// as they are. It returns how many bytes of r it consumed: whole entries
// only, for a follower to go on from (Scanner.Copy) with the Scanner.
func Read(r io.Reader, w io.Writer, o Options) (int64, *Scanner, error) {
	s := NewScanner()
	var tail []Line
	emit := func(l Line) error {
		switch {
		case l.Time.Before(o.Since):
		case o.Tail < 0:
			return l.Format(w, o.Timestamps)
		case o.Tail > 0:
			tail = append(tail, l)
			if len(tail) > o.Tail {
				tail = tail[1:]
			}
		}
		return nil
	}
	n, err := s.scan(r, emit)
	if err != nil {
		return n, s, err
	}
	if !o.Follow {
		for _, l := range s.peek() {
			if err := emit(l); err != nil {
				return n, s, err
			}
		}
	}
	for _, l := range tail {
		if err := l.Format(w, o.Timestamps); err != nil {
			return n, s, err
		}
	}
	return n, s, nil
}

// Copy prints the lines that the entries in r end, as they come, and
// returns the bytes consumed (whole entries only): `logs -f` calls it
// each time the log grew, from where it left off.
func (s *Scanner) Copy(r io.Reader, w io.Writer, timestamps bool) (int64, error) {
	return s.scan(r, func(l Line) error { return l.Format(w, timestamps) })
}

// Flush prints the lines not ended, as they are (no newline), and
// forgets them: the end of a followed log whose writer is gone.
func (s *Scanner) Flush(w io.Writer, timestamps bool) error {
	for _, l := range s.peek() {
		if err := l.Format(w, timestamps); err != nil {
			return err
		}
		delete(s.open, l.Stream)
	}
	return nil
}

func (s *Scanner) scan(r io.Reader, emit func(Line) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 && raw[len(raw)-1] == '\n' {
			n += int64(len(raw))
			if l, ok := s.Add(raw[:len(raw)-1]); ok {
				if err := emit(l); err != nil {
					return n, err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// peek returns the lines not ended, stdout's first, marked partial, and
// keeps them open; the empty rest of a line handed on in pieces is none.
func (s *Scanner) peek() []Line {
	var out []Line
	for _, st := range []string{Stdout, Stderr} {
		if l := s.open[st]; l != nil && !(l.Continued && len(l.Msg) == 0) {
			c := *l
			c.Msg = bytes.Clone(l.Msg)
			c.Partial = true
			out = append(out, c)
		}
	}
	return out
}
