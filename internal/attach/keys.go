package attach

import (
	"fmt"
	"strings"
)

// DefaultDetachKeys are podman's (and docker's): ctrl-p then ctrl-q.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ParseDetachKeys reads podman's --detach-keys: a comma-separated
// sequence of keys, each a single character or ctrl-<c> where <c> is a
// letter or one of @ [ \ ] ^ _ (the control codes 0-31). "" is no
// sequence: detaching is off.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case len(k) == 6 && strings.EqualFold(k[:5], "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				keys = append(keys, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				keys = append(keys, c-'A'+1)
			case strings.IndexByte("@[\\]^_", c) >= 0:
				keys = append(keys, c-'@')
			default:
				return nil, fmt.Errorf("--detach-keys %q: unknown key %q (want a character, or ctrl- and a letter or one of @[\\]^_)", s, k)
			}
		default:
			return nil, fmt.Errorf("--detach-keys %q: unknown key %q (want a character, or ctrl- and a letter or one of @[\\]^_)", s, k)
		}
	}
	return keys, nil
}

// detacher finds the detach sequence in what the user types. The bytes
// that may begin it are held back until the next byte tells: the whole
// sequence detaches (and is never sent), a mismatch sends them on.
type detacher struct {
	keys []byte
	held int // how many of keys were seen last
}

// feed returns what to send of p and whether the sequence was typed (what
// came before it in p is still returned, to be sent).
func (d *detacher) feed(p []byte) (out []byte, detach bool) {
	if len(d.keys) == 0 {
		return p, false
	}
	out = make([]byte, 0, len(p)+d.held)
	for _, c := range p {
		if c == d.keys[d.held] {
			d.held++
			if d.held == len(d.keys) {
				return out, true
			}
			continue
		}
		// A mismatch: the held bytes were typed for the container. The
		// current byte may begin the sequence anew.
		out = append(out, d.keys[:d.held]...)
		d.held = 0
		if c == d.keys[0] {
			d.held = 1
			if len(d.keys) == 1 {
				return out, true
			}
			continue
		}
		out = append(out, c)
	}
	return out, false
}
