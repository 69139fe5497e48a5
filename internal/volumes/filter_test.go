package volumes

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFilters(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	vols := []*Volume{
		{Name: "alpha", Driver: "local", Labels: map[string]string{"app": "web", "tier": ""}, Options: map[string]string{}, CreatedAt: now.Add(-48 * time.Hour)},
		{Name: "beta", Driver: "local", Labels: map[string]string{"app": "db"}, Options: map[string]string{"nocopy": ""}, CreatedAt: now.Add(-time.Hour)},
		{Name: "gamma", Driver: "local", Labels: map[string]string{}, Options: map[string]string{"type": "none", "o": "bind", "device": "/srv"}, CreatedAt: now},
	}
	s := &Store{InUse: func(name string) ([]string, error) {
		if name == "beta" {
			return []string{"c1"}, nil
		}
		return nil, nil
	}}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "alpha beta gamma"},
		{[]string{"name=alpha"}, "alpha"},
		{[]string{"name=a$"}, "alpha beta gamma"},
		{[]string{"name=^b"}, "beta"},
		{[]string{"name=^b", "name=^g"}, "beta gamma"},
		{[]string{"label=app"}, "alpha beta"},
		{[]string{"label=app=web"}, "alpha"},
		{[]string{"label=app", "label=tier"}, "alpha"},
		{[]string{"label!=app"}, "gamma"},
		{[]string{"label!=app=web"}, "beta gamma"},
		{[]string{"driver=local"}, "alpha beta gamma"},
		{[]string{"driver=nfs"}, ""},
		{[]string{"scope=local"}, "alpha beta gamma"},
		{[]string{"opt=nocopy"}, "beta"},
		{[]string{"opt=type=none"}, "gamma"},
		{[]string{"dangling=true"}, "alpha gamma"},
		{[]string{"dangling=false"}, "beta"},
		{[]string{"until=24h"}, "alpha"},
		{[]string{"until=30m"}, "alpha beta"},
		{[]string{"until=2026-06-01T11:30:00Z"}, "alpha beta"},
		{[]string{"until=2026-05-31"}, "alpha"},
		{[]string{"label=app", "name=^b"}, "beta"},
	} {
		f, err := ParseFilters(tc.filters, now)
		if err != nil {
			t.Errorf("ParseFilters(%v): %v", tc.filters, err)
			continue
		}
		var got []string
		for _, v := range vols {
			ok, err := s.match(f, v)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				got = append(got, v.Name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%v: got %q, want %q", tc.filters, strings.Join(got, " "), tc.want)
		}
	}
}

func TestFiltersNoHookAllDangling(t *testing.T) {
	f, _ := ParseFilters([]string{"dangling=true"}, time.Now())
	if ok, err := (&Store{}).match(f, &Volume{Name: "x"}); !ok || err != nil {
		t.Errorf("without an InUse hook, dangling=true: %v, %v", ok, err)
	}
}

func TestParseFiltersBad(t *testing.T) {
	for _, in := range []string{"bogus=1", "name", "dangling=maybe", "until=yesterday", "name=("} {
		if _, err := ParseFilters([]string{in}, time.Now()); err == nil {
			t.Errorf("ParseFilters(%q) passed", in)
		}
	}
	_, err := ParseFilters([]string{"bogus=1"}, time.Now())
	if !errors.Is(err, ErrInvalidFilter) || !strings.Contains(err.Error(), `"bogus=1" is an invalid volume filter`) {
		t.Errorf("bogus: %v", err)
	}
}

func FuzzParseFilters(f *testing.F) {
	f.Add("label=a=b")
	f.Add("until=10m")
	f.Fuzz(func(t *testing.T, in string) {
		fl, err := ParseFilters([]string{in}, time.Unix(0, 0))
		if err != nil {
			return
		}
		if _, err := (&Store{}).match(fl, &Volume{Name: "x", Labels: map[string]string{"a": "b"}}); err != nil {
			t.Errorf("match after a parsed filter %q: %v", in, err)
		}
	})
}
