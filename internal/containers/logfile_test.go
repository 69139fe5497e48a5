package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFileRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), LogFile)
	l, err := openLogFile(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"aaaa\n", "bbbb\n", "cccc\n", "a longer entry than the cap\n", "d\n"} {
		if _, err := l.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// Each write is whole in one file; the log holds what came after the
	// last rotation, the old part what came before it.
	for f, want := range map[string]string{p: "d\n", p + ".1": "a longer entry than the cap\n"} {
		b, err := os.ReadFile(f)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", filepath.Base(f), b, err, want)
		}
	}
	// Reopened (a new start), it goes on from the file's size.
	l, err = openLogFile(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Write([]byte("0123456789\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p + ".1"); string(b) != "d\n" {
		t.Errorf("after a start: old part %q", b)
	}
}

func TestParseLogOpts(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want int64
		err  string
	}{
		{nil, 0, ""},
		{[]string{"max-size=10mb"}, 10_000_000, ""},
		{[]string{"max-size=1.5k"}, 1500, ""},
		{[]string{"max-size=2G"}, 2_000_000_000, ""},
		{[]string{"max-size=512"}, 512, ""},
		{[]string{"max-size=512b"}, 512, ""},
		{[]string{"max-size=x"}, 0, "want a size"},
		{[]string{"max-size=-1"}, 0, "want a size"},
		{[]string{"path=/x"}, 0, "max-size=SIZE only"},
		{[]string{"max-size"}, 0, "max-size=SIZE only"},
	} {
		got, err := ParseLogOpts(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
