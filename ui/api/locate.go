package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// misfit finds where a decoded JSON document v holds a value that does not fit Go type t, and
// returns its path ("steps[3].at") and the type it had to fit. encoding/json names no array
// index in its type errors, and none at all for a time that does not parse; a person with
// 10,000 steps needs to know which one. Fields are visited in declaration order and map keys
// in sorted order, so the answer does not depend on map iteration.
func misfit(t reflect.Type, v any, path string) (string, reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		if v == nil {
			return "", nil, false
		}
		t = t.Elem()
	}
	if v == nil {
		return "", nil, false // null leaves any value as it is
	}
	if t == timeType {
		s, ok := v.(string)
		if !ok {
			return path, t, true
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return path, t, true
		}
		return "", nil, false
	}
	if t.Implements(reflect.TypeFor[json.Unmarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return "", nil, false // a type that reads itself says what it wants
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			return path, t, true
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return path, t, true
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := v.(json.Number); !ok {
			return path, t, true
		} else if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return path, t, true
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := v.(json.Number); !ok {
			return path, t, true
		} else if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return path, t, true
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return path, t, true
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if _, ok := v.(string); !ok { // []byte is base64 text
				return path, t, true
			}
			return "", nil, false
		}
		a, ok := v.([]any)
		if !ok {
			return path, t, true
		}
		for i, e := range a {
			if p, ft, bad := misfit(t.Elem(), e, path+"["+strconv.Itoa(i)+"]"); bad {
				return p, ft, true
			}
		}
	case reflect.Map:
		o, ok := v.(map[string]any)
		if !ok {
			return path, t, true
		}
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p, ft, bad := misfit(t.Elem(), o[k], join(path, k)); bad {
				return p, ft, true
			}
		}
	case reflect.Struct:
		o, ok := v.(map[string]any)
		if !ok {
			return path, t, true
		}
		return misfitFields(t, o, path)
	}
	return "", nil, false
}

// misfitFields looks at a struct's fields as encoding/json names them (tag, else the Go name;
// embedded structs without a tag are flattened; names match exactly, else ignoring case).
func misfitFields(t reflect.Type, o map[string]any, path string) (string, reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if p, bt, bad := misfitFields(ft, o, path); bad {
					return p, bt, true
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		v, ok := o[name]
		if !ok {
			for k, kv := range o {
				if strings.EqualFold(k, name) {
					v, ok = kv, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		if p, bt, bad := misfit(f.Type, v, join(path, name)); bad {
			return p, bt, true
		}
	}
	return "", nil, false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
