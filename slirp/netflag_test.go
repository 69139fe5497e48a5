package slirp

import (
	"strings"
	"testing"
)

func TestParseNetworkFlag(t *testing.T) {
	tests := []struct {
		in       string
		wantMode string
		want     Options
		wantErr  string
	}{
		{in: "slirp4netns", wantMode: ModeSlirp4netns},
		{in: "none", wantMode: ModeNone},
		{in: "host", wantMode: ModeHost},
		{in: "slirp4netns:allow_host_loopback=true", wantMode: ModeSlirp4netns, want: Options{HostLoopback: true}},
		{in: "slirp4netns:allow_host_loopback=false,mtu=1500", wantMode: ModeSlirp4netns, want: Options{MTU: 1500}},
		{in: "slirp4netns:port_handler=slirp4netns", wantMode: ModeSlirp4netns, want: Options{Driver: DriverSlirp4netns}},
		{in: "slirp4netns:port_handler=rootlesskit", wantMode: ModeSlirp4netns, want: Options{Driver: DriverBuiltin}},
		{in: "slirp4netns:mtu=65520,port_handler=builtin,allow_host_loopback=true", wantMode: ModeSlirp4netns, want: Options{MTU: 65520, Driver: DriverBuiltin, HostLoopback: true}},

		{in: "usernet", wantMode: ModeUsernet},
		{in: "usernet:allow_host_loopback=true,mtu=1500", wantMode: ModeUsernet, want: Options{HostLoopback: true, MTU: 1500}},
		{in: "usernet:port_handler=builtin", wantErr: "port_handler is slirp4netns's option"},

		{in: "", wantErr: "empty mode"},
		{in: "bridge", wantErr: `unknown mode "bridge"`},
		{in: "none:mtu=1500", wantErr: "takes no options"},
		{in: "slirp4netns:", wantErr: "empty option list"},
		{in: "slirp4netns:mtu", wantErr: "want NAME=VALUE"},
		{in: "slirp4netns:mtu=", wantErr: "want NAME=VALUE"},
		{in: "slirp4netns:mtu=100", wantErr: "from 1280 to 65520"},
		{in: "slirp4netns:mtu=abc", wantErr: "from 1280 to 65520"},
		{in: "slirp4netns:allow_host_loopback=1", wantErr: "want true or false"},
		{in: "slirp4netns:port_handler=pasta", wantErr: "want builtin or slirp4netns"},
		{in: "slirp4netns:enable_ipv6=true", wantErr: `unknown option "enable_ipv6"`},
		{in: "slirp4netns:mtu=1500,mtu=1400", wantErr: "given twice"},
		{in: "slirp4netns:mtu=1500,", wantErr: "want NAME=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			mode, o, err := ParseNetworkFlag(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseNetworkFlag(%q) = %q, %+v, %v; want error containing %q", tt.in, mode, o, err, tt.wantErr)
				}
				return
			}
			if err != nil || mode != tt.wantMode || o.MTU != tt.want.MTU || o.HostLoopback != tt.want.HostLoopback || o.Driver != tt.want.Driver {
				t.Fatalf("ParseNetworkFlag(%q) = %q, %+v, %v; want %q, %+v", tt.in, mode, o, err, tt.wantMode, tt.want)
			}
		})
	}
}

func FuzzParseNetworkFlag(f *testing.F) {
	for _, s := range []string{"slirp4netns", "none", "host:", "slirp4netns:mtu=1500,allow_host_loopback=true", "slirp4netns:,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mode, o, err := ParseNetworkFlag(s)
		if err != nil {
			return
		}
		switch mode {
		case ModeNone, ModeHost:
			if o.MTU != 0 || o.HostLoopback || o.Driver != "" {
				t.Fatalf("%q: mode %s with options %+v", s, mode, o)
			}
		case ModeSlirp4netns:
			if o.MTU != 0 && (o.MTU < 1280 || o.MTU > DefaultMTU) {
				t.Fatalf("%q: mtu %d", s, o.MTU)
			}
		default:
			t.Fatalf("%q: mode %q", s, mode)
		}
	})
}
