package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// TestMarshalRequest holds marshalRequest to json.Marshal's bytes for the
// requests the front ends send, for strings that need every kind of escape,
// and for a request with every field set.
func TestMarshalRequest(t *testing.T) {
	tests := []struct {
		name string
		req  Request
	}{
		{"ping", Request{V: 1, ID: 1, Op: OpPing}},
		{"zero", Request{}},
		{"login start", Request{V: 1, ID: 18446744073709551615, Op: OpLoginStart, User: "alice", Service: "sshd",
			RHost: "192.0.2.1", TTY: "ssh", AuthInfo: "publickey ssh-ed25519 AAAAC3Nza+/=\n", Login: &LoginStart{}}},
		{"login start, every option", Request{V: 1, ID: 7, Op: OpLoginStart, User: "bob", PriorFactor: PriorFactorPassword,
			Login: &LoginStart{Width: 80, Height: 24, Prompt: "Code: ", PasswordAndCode: true, RequirePublicKey: true}}},
		{"login start, height only", Request{Op: OpLoginStart, Login: &LoginStart{Height: 24}}},
		{"login start, prompt only", Request{Op: OpLoginStart, Login: &LoginStart{Prompt: "<code> & more"}}},
		{"login start, flag only", Request{Op: OpLoginStart, Login: &LoginStart{RequirePublicKey: true}}},
		{"answers", Request{V: 1, ID: 9, Op: OpLoginAnswer, Answers: []string{"123 456", "", "pw\"\\code"}}},
		{"empty answers", Request{V: 1, ID: 9, Op: OpLoginAnswer, Answers: []string{}}},
		{"escapes", Request{V: -1, Op: "x", User: "\x00\x01\b\f\n\r\t\x1f\x7f \"\\<>&/",
			Code: "\xff\xfe a\xc3 \xe2\x80\xa8 \u2029 \u2027 é 日本 🙂 \xf0\x9f\x99"}},
		{"enroll", Request{V: 1, ID: 3, Op: OpEnrollBegin, User: "carol", Force: true, After: "dave", Code: "654321"}},
		{"import", Request{V: 1, ID: 4, Op: OpAdminImport, User: "erin", Import: &Import{Secret: "JBSWY3DPEHPK3PXP",
			Algorithm: "SHA1", Digits: 6, Period: 30, RecoveryCodes: []string{"12345678"}, Replace: true}}},
		{"every field", everyField(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertMarshalRequest(t, &tt.req)
		})
	}
}

// everyField returns a request with every field of Request and of
// LoginStart set, found by reflection, so that a field added to either
// without a line in marshalRequest fails TestMarshalRequest. Import stays
// nil: a request with one is encoded by json.Marshal.
func everyField(t *testing.T) Request {
	var req Request
	req.Login = &LoginStart{}
	for _, v := range []reflect.Value{reflect.ValueOf(&req).Elem(), reflect.ValueOf(req.Login).Elem()} {
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(v.Type().Field(i).Name)
			case reflect.Int:
				f.SetInt(int64(i + 1))
			case reflect.Uint64:
				f.SetUint(uint64(i + 1))
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Slice:
				f.Set(reflect.ValueOf([]string{"a", "b"}))
			case reflect.Pointer:
				if f.IsNil() && f.Type() != reflect.TypeOf(req.Import) {
					t.Fatalf("field %s.%s: a pointer marshalRequest does not know", v.Type().Name(), v.Type().Field(i).Name)
				}
			default:
				t.Fatalf("field %s.%s of kind %s: teach marshalRequest and this test", v.Type().Name(), v.Type().Field(i).Name, f.Kind())
			}
		}
	}
	return req
}

func assertMarshalRequest(t *testing.T, req *Request) {
	t.Helper()
	want, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := marshalRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("marshalRequest:\n got %s\nwant %s", got, want)
	}
}

// FuzzMarshalRequest: for any strings, marshalRequest writes json.Marshal's
// bytes.
func FuzzMarshalRequest(f *testing.F) {
	f.Add("alice", "sshd", "\x00<\u2028\xff", "123 456", 80, true)
	f.Fuzz(func(t *testing.T, user, service, prompt, answer string, width int, flag bool) {
		req := &Request{V: 1, ID: uint64(width), Op: Op(answer), User: user, Service: service, RHost: prompt, TTY: user,
			AuthInfo: answer, PriorFactor: service, Force: flag, Code: answer, After: prompt,
			Login:   &LoginStart{Width: width, Height: -width, Prompt: prompt, PasswordAndCode: flag, RequirePublicKey: !flag},
			Answers: []string{answer, prompt, user}}
		assertMarshalRequest(t, req)
		req.Login, req.Answers = nil, nil
		assertMarshalRequest(t, req)
	})
}
