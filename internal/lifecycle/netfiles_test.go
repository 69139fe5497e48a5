package lifecycle

import "testing"

func TestNetFilesResolvConf(t *testing.T) {
	base := "# from the host\nnameserver 10.0.2.3\nsearch example.org\noptions ndots:2\n"
	for _, tc := range []struct {
		name string
		nf   NetFiles
		want string
	}{
		{"nothing asked", NetFiles{}, base},
		{"--dns replaces the servers", NetFiles{DNS: []string{"1.1.1.1", "9.9.9.9"}},
			"# from the host\nsearch example.org\noptions ndots:2\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n"},
		{"--dns-search and --dns-option replace theirs", NetFiles{Search: []string{"a.test", "b.test"}, Options: []string{"ndots:5", "timeout:1"}},
			"# from the host\nnameserver 10.0.2.3\nsearch a.test b.test\noptions ndots:5 timeout:1\n"},
	} {
		if got := tc.nf.resolvConf(base); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (&NetFiles{DNS: []string{"1.1.1.1"}}).resolvConf(""); got != "nameserver 1.1.1.1\n" {
		t.Errorf("no base: %q", got)
	}
	if got := (&NetFiles{}).resolvConf("nameserver 8.8.8.8"); got != "nameserver 8.8.8.8\n" {
		t.Errorf("a base without its last newline: %q", got)
	}
}
