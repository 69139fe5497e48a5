package volumes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Filters are volume ls/prune --filter KEY=VALUE, by key. Values of one
// key match when any does (label: when all do); keys must all match, as
// podman's (pkg/domain/filters/volumes.go):
//
//   - name=REGEXP: the name matches the regular expression (unanchored)
//   - label=KEY or label=KEY=VALUE, label!=...: has (has not) the label
//   - driver=local, scope=local
//   - opt=KEY=VALUE: one of its --opt
//   - dangling=true|false: no container uses it (the InUse hook; without
//     one, every volume is dangling)
//   - until=TIMESTAMP|DURATION: created before then (RFC 3339, a date, Unix
//     seconds, or a Go duration back from now)
type Filters map[string][]string

var filterKeys = map[string]bool{"name": true, "label": true, "label!": true, "driver": true, "scope": true, "opt": true, "dangling": true, "until": true}

// ParseFilters parses --filter flags and checks keys and values.
func ParseFilters(in []string, now time.Time) (Filters, error) {
	f := Filters{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !filterKeys[k] {
			return nil, fmt.Errorf("%q is an invalid volume filter: %w (name, label, label!, driver, scope, opt, dangling, until)", kv, ErrInvalidFilter)
		}
		switch k {
		case "name":
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("filter %s: %w", kv, err)
			}
		case "dangling":
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("filter %s: %w: want true or false", kv, ErrInvalidFilter)
			}
		case "until":
			t, err := untilTime(v, now)
			if err != nil {
				return nil, fmt.Errorf("filter %s: %w", kv, err)
			}
			v = t.Format(time.RFC3339Nano)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// untilTime is podman's util.ComputeUntilTimestamp, for what a person types.
func untilTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a timestamp or a duration", ErrInvalidFilter, v)
}

// match reports whether v passes every filter of f.
func (s *Store) match(f Filters, v *Volume) (bool, error) {
	for k, vals := range f {
		ok, err := s.matchKey(k, vals, v)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (s *Store) matchKey(k string, vals []string, v *Volume) (bool, error) {
	switch k {
	case "label":
		for _, l := range vals {
			if !hasLabel(v.Labels, l) {
				return false, nil
			}
		}
		return true, nil
	case "label!":
		for _, l := range vals {
			if hasLabel(v.Labels, l) {
				return false, nil
			}
		}
		return true, nil
	case "dangling":
		ids, err := s.users(v.Name)
		if err != nil {
			return false, err
		}
		for _, val := range vals {
			want, _ := strconv.ParseBool(val)
			if want == (len(ids) == 0) {
				return true, nil
			}
		}
		return false, nil
	}
	for _, val := range vals {
		if matchOne(k, val, v) {
			return true, nil
		}
	}
	return false, nil
}

func matchOne(k, val string, v *Volume) bool {
	switch k {
	case "name":
		re, err := regexp.Compile(val)
		return err == nil && re.MatchString(v.Name)
	case "driver":
		return val == v.Driver
	case "scope":
		return val == "local"
	case "opt":
		ok, want, hasVal := strings.Cut(val, "=")
		got, has := v.Options[ok]
		return has && (!hasVal || got == want)
	case "until":
		t, err := time.Parse(time.RFC3339Nano, val)
		return err == nil && v.CreatedAt.Before(t)
	}
	return false
}

// hasLabel is podman's label filter: KEY, or KEY=VALUE.
func hasLabel(labels map[string]string, filter string) bool {
	k, want, withValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == want)
}
