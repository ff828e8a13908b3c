package pamstack

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
)

func TestPAMFields(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"auth required pam_otpgate.so", []string{"auth", "required", "pam_otpgate.so"}},
		{"auth\t[success=1 default=ignore]\tpam_unix.so nullok", []string{"auth", "[success=1 default=ignore]", "pam_unix.so", "nullok"}},
		{"auth required pam_otpgate.so [prompt=Code from your phone: ]", []string{"auth", "required", "pam_otpgate.so", "[prompt=Code from your phone: ]"}},
		{"   ", nil},
		{"@include common-auth\n", []string{"@include", "common-auth"}},
		{"auth required pam_otpgate.so # a comment [x", []string{"auth", "required", "pam_otpgate.so"}},
		{"# auth required pam_deny.so", nil},
	}
	for _, tt := range tests {
		if got := Fields(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Fields(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	files := map[string]string{
		"common-auth": "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\naccount required pam_unix.so\n",
		"svc":         "auth include common-auth\n-auth required /lib/security/pam_otpgate.so fail=open # note\nsession required pam_limits.so\n",
		"loop":        "@include loop\n",
		"missing":     "-auth include nope\nauth required\n",
	}
	read := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	entries, probs, err := Load("svc", read)
	if err != nil || len(probs) > 0 {
		t.Fatalf("svc: %v %v", err, probs)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Type+" "+e.Base()+" "+e.At())
	}
	want := []string{
		"auth pam_unix.so common-auth:1 (via svc:1)",
		"auth pam_deny.so common-auth:2 (via svc:1)",
		"auth pam_permit.so common-auth:3 (via svc:1)",
		"auth pam_otpgate.so svc:2",
		"session pam_limits.so svc:3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n%q\nwant\n%q", got, want)
	}
	otp := entries[3]
	if v, ok := otp.Arg("fail"); !otp.IsOtpgate() || !otp.Dash || v != "open" || !ok {
		t.Errorf("module line: %+v", otp)
	}
	if !FailureEndsStack(AuthEntries(entries), 0) {
		t.Errorf("common-auth's pam_unix line does not end the stack on a failure")
	}
	if ok, why := ControlCounts(AuthEntries(entries), 3); !ok {
		t.Errorf("required pam_otpgate does not count: %s", why)
	}

	kinds := func(svc string) []ProblemKind {
		_, probs, err := Load(svc, read)
		if err != nil {
			t.Fatal(err)
		}
		var k []ProblemKind
		for _, p := range probs {
			k = append(k, p.Kind)
		}
		return k
	}
	if k := kinds("loop"); !slices.Equal(k, []ProblemKind{IncludeLoop}) {
		t.Errorf("loop: %v", k)
	}
	if k := kinds("missing"); !slices.Equal(k, []ProblemKind{Syntax, IncludeMissing}) {
		t.Errorf("missing: %v", k)
	}
	if _, _, err := Load("absent", read); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent service: %v", err)
	}
}
