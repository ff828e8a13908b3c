//go:build root

package protocol

import (
	"strings"
	"testing"
)

func TestDecodeLoginRequests(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"a login start", `{"v":1,"id":1,"op":"login_start","user":"alice","rhost":"192.0.2.1","login":{"width":80,"height":24}}`, ""},
		{"a login start without its payload", `{"v":1,"id":1,"op":"login_start","user":"alice"}`, "login is only and always used with login_start"},
		{"a login payload elsewhere", `{"v":1,"id":1,"op":"status","user":"alice","login":{}}`, "login is only and always used with login_start"},
		{"a login start needs a user", `{"v":1,"id":1,"op":"login_start","login":{}}`, "needs a user"},
		{"an answer needs no user", `{"v":1,"id":1,"op":"login_answer","answers":["123 456"]}`, ""},
		{"answers elsewhere", `{"v":1,"id":1,"op":"status","user":"alice","answers":["1"]}`, "answers are only used with login_answer"},
		{"too many answers", `{"v":1,"id":1,"op":"login_answer","answers":["1","2","3","4","5"]}`, "at most 4 answers"},
		{"an overlong answer", `{"v":1,"id":1,"op":"login_answer","answers":["` + strings.Repeat("1", MaxAnswerLen+1) + `"]}`, "longer than 1024"},
		{"a long paste as a code reaches the daemon", `{"v":1,"id":1,"op":"enroll_confirm","user":"alice","code":"` + strings.Repeat("1", 200) + `"}`, ""},
		{"a prompt with a newline", `{"v":1,"id":1,"op":"login_start","user":"alice","login":{"prompt":"a\nb"}}`, "control character"},
		{"a negative width", `{"v":1,"id":1,"op":"login_start","user":"alice","login":{"width":-1}}`, "terminal size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.json))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoginStepValidate(t *testing.T) {
	code := LoginPrompt{Text: "Verification code: "}
	tests := []struct {
		name string
		step LoginStep
		want string
	}{
		{"prompts", LoginStep{Prompts: []LoginPrompt{code}}, ""},
		{"a verdict with last words", LoginStep{Verdict: VerdictDeny, Messages: []LoginMessage{{Style: MessageError, Text: "Wrong code."}}}, ""},
		{"a QR code keeps its lines", LoginStep{Prompts: []LoginPrompt{code}, Messages: []LoginMessage{{Style: MessageInfo, Text: "▀▄\n▄▀\n"}}}, ""},
		{"neither", LoginStep{}, "neither prompts nor a verdict"},
		{"both", LoginStep{Verdict: VerdictSuccess, Prompts: []LoginPrompt{code}}, "both prompts and a verdict"},
		{"an unknown verdict", LoginStep{Verdict: "maybe"}, "unknown verdict"},
		{"an unknown style", LoginStep{Verdict: VerdictDeny, Messages: []LoginMessage{{Style: "blink", Text: "x"}}}, "unknown message style"},
		{"an escape in a message", LoginStep{Verdict: VerdictDeny, Messages: []LoginMessage{{Style: MessageError, Text: "\x1b[2J"}}}, "control character"},
		{"a newline in a prompt", LoginStep{Prompts: []LoginPrompt{{Text: "a\nb"}}}, "control character"},
		{"too many prompts", LoginStep{Prompts: []LoginPrompt{code, code, code, code, code}}, "at most 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.step.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestDecodeStep: a dialogue decodes only a reply's header and step, and
// tells a reply it does not understand (other parts of a Response: no
// step) from one it cannot read.
func TestDecodeStep(t *testing.T) {
	status := `"status":{"user":"alice","state":"active","policy_requires":true,"exempt":false,"recovery_remaining":0,"failures":0}`
	tests := []struct {
		name, reply string
		// want is the verdict of the decoded step, "-" for no step, or
		// "error: ..." for an error reply.
		want, err string
	}{
		{"a step", `{"v":1,"id":2,"step":{"verdict":"success"}}`, "success", ""},
		{"an error reply", `{"v":1,"id":2,"error":{"code":"locked","message":"x","retry_after":60}}`, "error: locked", ""},
		{"another part of a Response is read: no step", `{"v":1,"id":2,` + status + `}`, "-", ""},
		{"another part beside the step", `{"v":1,"id":2,` + status + `,"step":{"verdict":"deny"}}`, "deny", ""},
		{"an unknown field cannot be read", `{"v":1,"id":2,"shell":true}`, "", "unknown field"},
		{"another version cannot be read", `{"v":2,"id":2,"step":{"verdict":"success"}}`, "", "protocol version 2"},
		{"malformed JSON", `{"v":1,`, "", "malformed response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := decodeStep([]byte(tt.reply))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "-"
			switch {
			case resp.Error != nil:
				got = "error: " + string(resp.Error.Code)
			case resp.Step != nil:
				got = string(resp.Step.Verdict)
			}
			if got != tt.want || resp.ID != 2 {
				t.Fatalf("got %s (id %d), want %s", got, resp.ID, tt.want)
			}
		})
	}
}
