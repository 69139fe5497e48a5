package main

import (
	"reflect"
	"testing"
)

func TestPositional(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"-a"}, nil},
		{[]string{"-a", "-q", "--format", "json"}, nil},
		{[]string{"--format=json"}, nil},
		{[]string{"-f", "json", "abc"}, []string{"abc"}},
		{[]string{"abc", "--", "-ef"}, []string{"abc", "-ef"}},
		{[]string{"--format", "table", "id1"}, []string{"id1"}},
	} {
		if got := positional(c.args, "format", "f"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("positional(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
