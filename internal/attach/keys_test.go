package attach

import (
	"bytes"
	"testing"
)

func TestParseDetachKeys(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		bad  bool
	}{
		{in: "ctrl-p,ctrl-q", want: []byte{16, 17}},
		{in: "", want: nil},
		{in: "ctrl-a", want: []byte{1}},
		{in: "ctrl-Z", want: []byte{26}},
		{in: "CTRL-c", want: []byte{3}},
		{in: "ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", want: []byte{0, 27, 28, 29, 30, 31}},
		{in: "a,b", want: []byte("ab")},
		{in: "x,ctrl-x", want: []byte{'x', 24}},
		{in: "ctrl-1", bad: true},
		{in: "ctrl-", bad: true},
		{in: "ab", bad: true},
		{in: "ctrl-p,", bad: true},
		{in: ",", bad: true},
		{in: "alt-p", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseDetachKeys(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseDetachKeys(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDetacher(t *testing.T) {
	pq := []byte{16, 17}
	tests := []struct {
		name   string
		keys   []byte
		chunks []string
		sent   string
		detach bool
	}{
		{name: "plain", keys: pq, chunks: []string{"hello"}, sent: "hello"},
		{name: "sequence", keys: pq, chunks: []string{"ab\x10\x11cd"}, sent: "ab", detach: true},
		{name: "split over reads", keys: pq, chunks: []string{"ab\x10", "\x11"}, sent: "ab", detach: true},
		{name: "first key alone is sent", keys: pq, chunks: []string{"a\x10b"}, sent: "a\x10b"},
		{name: "held then mismatch", keys: pq, chunks: []string{"\x10", "x"}, sent: "\x10x"},
		{name: "first key twice", keys: pq, chunks: []string{"\x10\x10\x11"}, sent: "\x10", detach: true},
		{name: "off", keys: nil, chunks: []string{"\x10\x11"}, sent: "\x10\x11"},
		{name: "one key", keys: []byte{'q'}, chunks: []string{"abq"}, sent: "ab", detach: true},
		{name: "three keys", keys: []byte("abc"), chunks: []string{"xaba", "bc"}, sent: "xab", detach: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &detacher{keys: tt.keys}
			var sent []byte
			detach := false
			for _, c := range tt.chunks {
				out, det := d.feed([]byte(c))
				sent = append(sent, out...)
				if det {
					detach = true
					break
				}
			}
			if string(sent) != tt.sent || detach != tt.detach {
				t.Errorf("sent %q, detach %v; want %q, %v", sent, detach, tt.sent, tt.detach)
			}
		})
	}
}

func FuzzParseDetachKeys(f *testing.F) {
	f.Add("ctrl-p,ctrl-q")
	f.Add("a,ctrl-[")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseDetachKeys(s)
		if err == nil && s != "" && len(keys) == 0 {
			t.Errorf("%q: no keys and no error", s)
		}
	})
}
