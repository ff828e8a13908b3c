package sshd

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
)

func TestEnrollTextShowsTheQRCodeKeyAndPromptOrRefuses(t *testing.T) {
	good := protocol.EnrollInfo{QR: "█▀▀█\n█▄▄█", Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", Digits: 6}
	text, ok := enrollText(&good)
	if !ok || !strings.Contains(text, "█▀▀█\n█▄▄█\n") || !strings.Contains(text, enrollKeyLine+good.Secret+"\n") || !strings.HasSuffix(text, codePrompt) {
		t.Fatalf("enrollText = %q, %v", text, ok)
	}
	tests := []struct {
		name string
		info protocol.EnrollInfo
	}{
		{"no QR code", protocol.EnrollInfo{Secret: good.Secret}},
		{"no key", protocol.EnrollInfo{QR: good.QR}},
		{"an escape sequence in the QR code", protocol.EnrollInfo{QR: "\x1b]0;x\x07", Secret: good.Secret}},
		{"a key that is not base32", protocol.EnrollInfo{QR: good.QR, Secret: "abc\x1b"}},
		{"an oversized QR code", protocol.EnrollInfo{QR: strings.Repeat("█", maxEnrollText), Secret: good.Secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if text, ok := enrollText(&tt.info); ok {
				t.Fatalf("accepted: %q", text)
			}
		})
	}
}
