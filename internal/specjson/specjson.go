package specjson

import (
	"bytes"
	"encoding/json"
	"reflect"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Unmarshal is encoding/json's Unmarshal: the same result, the same
// error (see legacyError).
func Unmarshal(data []byte, v any) error {
	if err := jsonv1.Unmarshal(data, v); err != nil {
		return legacyError(err, v, func(w any) error { return json.Unmarshal(data, w) })
	}
	return nil
}

// DecodeFirst decodes the first JSON value of data into v and ignores
// what follows it, as json.NewDecoder(bytes.NewReader(data)).Decode(v)
// does, with the same result and error: spec.Decode reads config.json so
// (as runc reads it), and text after the object has never made a bundle
// fail.
func DecodeFirst(data []byte, v any) error {
	if err := jsonv1.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return legacyError(err, v, func(w any) error { return json.NewDecoder(bytes.NewReader(data)).Decode(w) })
	}
	return nil
}

// legacyError is encoding/json's error for an input the new decoder
// refused (err): a decode with legacy into a new value of v's type. Both
// refuse the same inputs (specjson_test.go, and its fuzzer), but their
// words differ: a *json.SyntaxError's message and, for a few inputs (a
// byte order mark, a short \u escape), its offset; a type error's field
// path, which the new one gives with array indexes (process.args.0). The
// errors users and callers read (spec.Decode turns the offset into a
// line and column, and matches encoding/json's types) stay encoding/json's,
// word for word; only a failed decode pays for the second one. Should
// legacy accept the input, err is returned as it is.
func legacyError(err error, v any, legacy func(any) error) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return err
	}
	if lerr := legacy(reflect.New(t.Elem()).Interface()); lerr != nil {
		return lerr
	}
	return err
}

// Marshal is encoding/json's Marshal.
func Marshal(v any) ([]byte, error) { return jsonv1.Marshal(v) }

// MarshalIndent is encoding/json's MarshalIndent.
func MarshalIndent(v any, prefix, indent string) ([]byte, error) {
	return jsonv1.MarshalIndent(v, prefix, indent)
}
