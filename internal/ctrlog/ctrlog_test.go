package ctrlog

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func clock(start time.Time) func() time.Time {
	t := start
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, clock(t0))
	out, errw := l.Stream(Stdout), l.Stream(Stderr)
	for _, w := range []struct {
		w io.Writer
		s string
	}{{out, "one\ntw"}, {errw, "oops\n"}, {out, "o\n"}, {out, ""}, {out, "\n\nlast"}} {
		if _, err := w.w.Write([]byte(w.s)); err != nil {
			t.Fatal(err)
		}
	}
	want := `2024-01-01T00:00:01.000000000Z stdout F one
2024-01-01T00:00:01.000000000Z stdout P tw
2024-01-01T00:00:02.000000000Z stderr F oops
2024-01-01T00:00:03.000000000Z stdout F o
2024-01-01T00:00:04.000000000Z stdout F 
2024-01-01T00:00:04.000000000Z stdout F 
2024-01-01T00:00:04.000000000Z stdout P last
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// The zone is numeric where it is not UTC, as conmon writes it.
func TestTimeFormat(t *testing.T) {
	z := time.FixedZone("x", 2*3600)
	if got := time.Date(2024, 1, 1, 0, 0, 0, 5, z).Format(TimeFormat); got != "2024-01-01T00:00:00.000000005+02:00" {
		t.Errorf("got %s", got)
	}
}

const sample = `2024-01-01T00:00:01.000000000+00:00 stdout F one
2024-01-01T00:00:02.000000000+00:00 stdout P tw
2024-01-01T00:00:03.000000000+00:00 stderr F oops
garbage line
2024-01-01T00:00:04.000000000+00:00 stdout F o
2024-01-01T00:00:05.000000000+00:00 stdout F three
2024-01-01T00:00:06.000000000+00:00 stdout P no newline
`

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"all", Options{Tail: -1}, "one\noops\ntwo\nthree\nno newline"},
		{"tail 2", Options{Tail: 2}, "three\nno newline"},
		{"tail 0", Options{Tail: 0}, ""},
		{"tail more", Options{Tail: 10}, "one\noops\ntwo\nthree\nno newline"},
		// A line's time is its first entry's: "two" began at 00:02.
		{"since", Options{Tail: -1, Since: t0.Add(2 * time.Second)}, "oops\ntwo\nthree\nno newline"},
		{"timestamps", Options{Tail: 2, Timestamps: true}, "2024-01-01T00:00:05.000000000Z three\n2024-01-01T00:00:06.000000000Z no newline"},
		{"follow leaves the partial line", Options{Tail: -1, Follow: true}, "one\noops\ntwo\nthree\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, _, err := Read(strings.NewReader(sample), &out, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
			if want := int64(len(sample)); n != want {
				t.Errorf("consumed %d bytes, want %d (whole entries only)", n, want)
			}
		})
	}
}

// A follower goes on where Read stopped: a line begun before is printed
// once, whole, when it ends.
func TestFollow(t *testing.T) {
	var out bytes.Buffer
	log := sample
	n, s, err := Read(strings.NewReader(log), &out, Options{Tail: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	more := "2024-01-01T00:00:07.000000000+00:00 stdout F  ended\n2024-01-01T00:00:08.000000000+00:00 stderr P bye"
	log += more
	m, err := s.Copy(strings.NewReader(log[n:]), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(strings.Index(more, "\n") + 1); m != want {
		t.Errorf("consumed %d, want %d", m, want)
	}
	if err := s.Flush(&out, false); err != nil {
		t.Fatal(err)
	}
	if want := "one\noops\ntwo\nthree\nno newline ended\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "x y", "2024-01-01T00:00:01Z stdout X m", "2024-01-01T00:00:01Z stdin F m", "yesterday stdout F m"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	e, err := Parse([]byte("2024-01-01T00:00:01.5+01:00 stderr P a b  c"))
	if err != nil || e.Stream != Stderr || !e.Partial || string(e.Msg) != "a b  c" || !e.Time.Equal(t0.Add(-time.Hour+1500*time.Millisecond)) {
		t.Errorf("got %+v, %v", e, err)
	}
	// An empty full line: the separator is there, the text is empty.
	if e, err := Parse([]byte("2024-01-01T00:00:01Z stdout F")); err != nil || len(e.Msg) != 0 {
		t.Errorf("empty line: %+v, %v", e, err)
	}
}

// FuzzRead: whatever the file holds (a crash mid-write, another program's
// file), Read does not fail or panic, consumes whole lines only, and what
// a Writer wrote reads back as written.
func FuzzRead(f *testing.F) {
	f.Add([]byte(sample), []byte("out\npart"), 2)
	f.Add([]byte("\n\n\x00 stdout F"), []byte(""), -1)
	f.Fuzz(func(t *testing.T, raw, written []byte, tail int) {
		var out bytes.Buffer
		n, _, err := Read(bytes.NewReader(raw), &out, Options{Tail: tail % 5})
		if err != nil {
			t.Fatal(err)
		}
		if n > int64(len(raw)) || (n > 0 && raw[n-1] != '\n') {
			t.Fatalf("consumed %d of %d bytes", n, len(raw))
		}
		var log bytes.Buffer
		l := New(&log, clock(t0))
		if _, err := l.Stream(Stdout).Write(written); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if _, _, err := Read(&log, &out, Options{Tail: -1}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), written) {
			t.Fatalf("wrote %q, read back %q", written, out.Bytes())
		}
	})
}

// entries is a log of n partial stdout entries of size bytes each, then
// an empty full one: a container that printed n*size bytes with no
// newline (made as read, never held whole).
type entries struct {
	n, size int
	cur     []byte
}

func (e *entries) Read(p []byte) (int, error) {
	if len(e.cur) == 0 {
		switch {
		case e.n > 0:
			e.n--
			e.cur = []byte("2024-01-01T00:00:01.000000000+00:00 stdout P " + strings.Repeat("x", e.size) + "\n")
		case e.n == 0:
			e.n--
			e.cur = []byte("2024-01-01T00:00:02.000000000+00:00 stdout F \n")
		default:
			return 0, io.EOF
		}
	}
	k := copy(p, e.cur)
	e.cur = e.cur[k:]
	return k, nil
}

// maxWrite counts what is written and remembers the largest Write.
type maxWrite struct{ total, max int }

func (m *maxWrite) Write(p []byte) (int, error) {
	m.total += len(p)
	m.max = max(m.max, len(p))
	return len(p), nil
}

// A container that prints 16 MiB with no newline: the reader hands it on
// in pieces of at most MaxLine, never the whole line at once (which it
// held in memory: `sandy logs` of `head -c 4G /dev/zero` ran out of
// memory), under every option that keeps lines (all, --tail, a follower).
func TestReadLongLine(t *testing.T) {
	const n, size = 512, 32 << 10
	for _, o := range []Options{{Tail: -1}, {Tail: 3}, {Tail: -1, Follow: true}, {Tail: -1, Timestamps: true}} {
		var w maxWrite
		_, s, err := Read(&entries{n: n, size: size}, &w, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(&w, o.Timestamps); err != nil {
			t.Fatal(err)
		}
		if w.max > MaxLine+size+len(TimeFormat)+2 {
			t.Errorf("%+v: a single write of %d bytes: the line was held whole (MaxLine %d)", o, w.max, MaxLine)
		}
		if o.Tail < 0 && !o.Timestamps && w.total != n*size+1 {
			t.Errorf("%+v: wrote %d bytes, want %d", o, w.total, n*size+1)
		}
	}
	// The pieces read back as the line, with one timestamp, the line's.
	var out bytes.Buffer
	if _, _, err := Read(&entries{n: 3 * MaxLine / 1000, size: 1000}, &out, Options{Tail: -1, Timestamps: true}); err != nil {
		t.Fatal(err)
	}
	if want := "2024-01-01T00:00:01.000000000Z " + strings.Repeat("x", 3*MaxLine/1000*1000) + "\n"; out.String() != want {
		t.Errorf("got %d bytes (%d timestamps), want %d", out.Len(), strings.Count(out.String(), "2024-"), len(want))
	}
}
