package protocol

import (
	"reflect"
	"testing"
)

// stepReplies are replies as otpgated writes them (EncodeResponse).
var stepReplies = []Response{
	{ResponseHeader: ResponseHeader{V: Version, ID: 1}, StepReply: StepReply{Step: &LoginStep{
		Prompts: []LoginPrompt{{Text: "Verification code: "}}}}},
	{ResponseHeader: ResponseHeader{V: Version, ID: 18446744073709551615}, StepReply: StepReply{Step: &LoginStep{
		Verdict: VerdictSuccess}}},
	{ResponseHeader: ResponseHeader{V: Version}, StepReply: StepReply{Step: &LoginStep{
		Messages: []LoginMessage{{Style: MessageInfo, Text: "Scan this:\n█▀▀▀█ ▄▄\n\"key\" <a&b> \\ /\t\u2028\u2029 é 日本 🙂"},
			{Style: MessageError, Text: ""}},
		Prompts: []LoginPrompt{{Text: "Password and code: ", Echo: false}, {Text: "Name: ", Echo: true}}}}},
	{ResponseHeader: ResponseHeader{V: Version, ID: 42}, StepReply: StepReply{Step: &LoginStep{
		Messages: []LoginMessage{{Style: MessageError, Text: "Wrong code."}}, Verdict: VerdictDeny}}},
	{ResponseHeader: ResponseHeader{V: Version, ID: 7}, StepReply: StepReply{Step: &LoginStep{
		Verdict: VerdictSuccess, AuthTok: "pässword\x7f\"\\"}}},
	{ResponseHeader: ResponseHeader{V: Version, ID: 8}, StepReply: StepReply{Step: &LoginStep{}}},
}

// TestParseStepReply: the replies otpgated writes are parsed without
// encoding/json, into what encoding/json decodes.
func TestParseStepReply(t *testing.T) {
	for i, r := range stepReplies {
		frame, err := EncodeResponse(&r)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseStepReply(frame)
		if !ok {
			t.Errorf("reply %d: %s not parsed", i, frame)
			continue
		}
		var want stepResponse
		if err := decodeResponse(frame, &want, &want.ResponseHeader); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("reply %d: %s\n got %+v\nwant %+v", i, frame, got, want)
		}
	}
}

// TestParseStepReplyOthers: replies in any other form are left to
// encoding/json (ok false), which decodes or refuses them as before.
func TestParseStepReplyOthers(t *testing.T) {
	for _, frame := range []string{
		``,
		`{"v":1,"id":1,"error":{"code":"bad_request","message":"unknown operation"}}`,
		`{"v":2,"id":1,"step":{"verdict":"success"}}`,
		`{"v":1,"id":1,"step":{"verdict":"success"}} `,
		`{ "v":1,"id":1,"step":{"verdict":"success"}}`,
		`{"V":1,"id":1,"step":{"verdict":"success"}}`,
		`{"v":1,"id":1,"id":2,"step":{"verdict":"success"}}`,
		`{"v":1,"id":01,"step":{"verdict":"success"}}`,
		`{"v":1,"id":-1,"step":{"verdict":"success"}}`,
		`{"v":1,"id":1,"step":null}`,
		`{"v":1,"id":1,"step":{"verdict":"\ud83d\ude42"}}`,
		`{"v":1,"id":1,"step":{"verdict":"` + "\xff" + `"}}`,
		`{"v":1,"id":1,"step":{"verdict":"` + "\n" + `"}}`,
		`{"v":1,"id":1,"step":{"verdict":"success","extra":1}}`,
		`{"v":1,"id":1,"status":{},"step":{"verdict":"success"}}`,
		`{"v":1,"id":1,"step":{"prompts":[{"text":"a","echo":1}]}}`,
		`{"v":1,"id":1,"step":{"messages":[{"style":"info","text":"a"},]}}`,
		`{"v":1,"id":99999999999999999999,"step":{}}`,
	} {
		if resp, ok := parseStepReply([]byte(frame)); ok {
			t.Errorf("%q parsed as %+v", frame, resp)
		}
	}
}

// FuzzParseStepReply: whatever parseStepReply parses, encoding/json
// decodes to the same reply.
func FuzzParseStepReply(f *testing.F) {
	for _, r := range stepReplies {
		frame, err := EncodeResponse(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte(`{"v":1,"id":1,"step":{"messages":[],"prompts":[],"verdict":"x\u0041\/"}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := parseStepReply(frame)
		if !ok {
			return
		}
		var want stepResponse
		if err := decodeResponse(frame, &want, &want.ResponseHeader); err != nil {
			t.Fatalf("%q parsed, but encoding/json says: %v", frame, err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", frame, got, want)
		}
	})
}
