package userns

import (
	"strings"
	"testing"
)

func TestParseUmask(t *testing.T) {
	got, err := parseUmask(strings.NewReader("Name:\tsandy\nUmask:\t0027\nState:\tR (running)\n"))
	if err != nil || got != 0o027 {
		t.Errorf("parseUmask: %o, %v; want 027", got, err)
	}
	if _, err := parseUmask(strings.NewReader("Name:\tsandy\n")); err == nil {
		t.Error("parseUmask without a Umask line: no error")
	}
}
