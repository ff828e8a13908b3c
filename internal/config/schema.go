package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// kind is what a key of the file must hold, as the decoder sees it.
type kind int

const (
	kindTable kind = iota
	kindString
	kindInt
	kindFloat
	kindDuration
	kindStrings
	kindBool
	kindStartups
)

// field is one key the file may set.
type field struct {
	key  toml.Key
	kind kind
}

// schema lists every key of Config, tables included, in struct order, and
// indexes them by toml.Key.String(). It is derived from the toml tags, so a
// field added to Config is known to Load at once.
var schema = sync.OnceValues(func() ([]field, map[string]field) {
	var fields []field
	walkSchema(reflect.TypeFor[Config](), nil, &fields)
	byKey := make(map[string]field, len(fields))
	for _, f := range fields {
		byKey[f.key.String()] = f
	}
	return fields, byKey
})

func walkSchema(t reflect.Type, prefix toml.Key, out *[]field) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		key := append(append(toml.Key{}, prefix...), name)
		k := kindOf(sf.Type)
		*out = append(*out, field{key: key, kind: k})
		if k == kindTable {
			walkSchema(sf.Type, key, out)
		}
	}
}

func kindOf(t reflect.Type) kind {
	switch {
	case t == reflect.TypeFor[Duration]():
		return kindDuration
	case t == reflect.TypeFor[Startups]():
		return kindStartups
	case t.Kind() == reflect.Struct:
		return kindTable
	case t.Kind() == reflect.String:
		return kindString
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return kindInt
	case t.Kind() == reflect.Float64:
		return kindFloat
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return kindStrings
	case t.Kind() == reflect.Bool:
		return kindBool
	}
	panic(fmt.Sprintf("config: field type %s has no TOML kind; extend kindOf", t))
}

// expected describes the kind in an error message.
func (k kind) expected() string {
	switch k {
	case kindTable:
		return "a table"
	case kindString:
		return "a string"
	case kindInt:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindDuration:
		return `a duration string such as "90s", "5m" or "1h30m"`
	case kindBool:
		return "true or false"
	case kindStartups:
		return `a string "start:rate:full" such as "10:30:100"`
	default:
		return "an array of strings"
	}
}

// tomlTypeName turns MetaData.Type's names into words for error messages.
func tomlTypeName(t string) string {
	switch t {
	case "String":
		return "a string"
	case "Integer":
		return "an integer"
	case "Float":
		return "a float"
	case "Bool":
		return "a boolean"
	case "Datetime":
		return "a date-time"
	case "Array":
		return "an array"
	case "Hash":
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	}
	return strings.ToLower(t)
}

// goTypeName names a decoded TOML value's type like tomlTypeName does.
func goTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return "a date-time"
}

// check returns what is wrong with a value of TOML type typ (as named by
// MetaData.Type) and decoded value v for this field, or "".
func (f field) check(typ string, v any) string {
	ok := false
	switch f.kind {
	case kindTable:
		ok = typ == "Hash"
	case kindString:
		ok = typ == "String"
	case kindInt:
		ok = typ == "Integer"
	case kindBool:
		ok = typ == "Bool"
	case kindFloat:
		ok = typ == "Integer" || typ == "Float"
	case kindDuration:
		if s, isString := v.(string); isString {
			if _, err := parseDuration(s); err != nil {
				return err.Error()
			}
			return ""
		}
	case kindStartups:
		switch v := v.(type) {
		case string:
			if _, err := ParseStartups(v); err != nil {
				return err.Error()
			}
			return ""
		case int64:
			if _, err := startupsFromInt(v); err != nil {
				return err.Error()
			}
			return ""
		}
	case kindStrings:
		list, isList := v.([]any)
		if !isList {
			break
		}
		for i, e := range list {
			if _, isString := e.(string); !isString {
				return fmt.Sprintf("expected %s, got %s at index %d", f.kind.expected(), goTypeName(e), i)
			}
		}
		return ""
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("expected %s, got %s", f.kind.expected(), tomlTypeName(typ))
}

// lookup returns the decoded value at key in a document decoded into a map.
func lookup(doc map[string]any, key toml.Key) any {
	var v any = doc
	for _, part := range key {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}
