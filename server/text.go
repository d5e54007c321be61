package server

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Text the server takes in is held to what both of its databases store:
// PostgreSQL refuses a NUL character or invalid UTF-8 in a text value, which
// SQLite keeps. Such input reaching a query would fail there as a 500, after
// the fact and on one database only; it is refused at the edge instead, alike
// on both, with a 400 that says what is wrong.
//
// Passwords are exempt: only their hashes reach the database, and a password
// already set must keep working.

var errBadText = newProblem(http.StatusBadRequest, probMalformed, "Malformed request",
	"Text in the request must be UTF-8 without NUL characters.")

// textOK reports whether s can be stored as text by both databases.
func textOK(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// isPasswordField names the fields textOK does not apply to.
func isPasswordField(name string) bool { return strings.Contains(name, "password") }

// urlTextOK checks a request's path and its query's names and values. A
// query that does not parse is left to the handler, which refuses it.
func urlTextOK(u *url.URL) bool {
	if !textOK(u.Path) {
		return false
	}
	q, _ := url.ParseQuery(u.RawQuery)
	return valuesTextOK(q)
}

// valuesTextOK checks the names and values of a query or a posted form.
func valuesTextOK(v url.Values) bool {
	for k, vs := range v {
		if !textOK(k) {
			return false
		}
		if isPasswordField(k) {
			continue
		}
		for _, s := range vs {
			if !textOK(s) {
				return false
			}
		}
	}
	return true
}

// jsonTextOK checks every string a JSON body decoded into (json.Decoder
// already replaces invalid UTF-8; a \u0000 escape still decodes to NUL).
func jsonTextOK(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return textOK(v.String())
	case reflect.Pointer, reflect.Interface:
		return v.IsNil() || jsonTextOK(v.Elem())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !jsonTextOK(v.Index(i)) {
				return false
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if !jsonTextOK(it.Key()) || !jsonTextOK(it.Value()) {
				return false
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name // matched case-insensitively, as json does
			}
			if !f.IsExported() || isPasswordField(strings.ToLower(name)) {
				continue
			}
			if !jsonTextOK(v.Field(i)) {
				return false
			}
		}
	}
	return true
}
