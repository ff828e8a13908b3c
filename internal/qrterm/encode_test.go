package qrterm

import (
	"reflect"
	"testing"

	"rsc.io/qr/coding"
)

func TestSegments(t *testing.T) {
	tests := []struct {
		text string
		want []coding.Encoding
	}{
		{"otpauth://totp/x:a?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=x", []coding.Encoding{
			coding.String("otpauth://totp/x:a?secret="), coding.Alpha("JBSWY3DPEHPK3PXPJBSWY3DP"), coding.String("&issuer=x"),
		}},
		{"ABCDEFGHIJKLMNOP", []coding.Encoding{coding.Alpha("ABCDEFGHIJKLMNOP")}},
		// Too short a run to pay for two segment headers.
		{"secret=JBSWY3DPEHP&x", []coding.Encoding{coding.String("secret=JBSWY3DPEHP&x")}},
		{"lower case only", []coding.Encoding{coding.String("lower case only")}},
	}
	for _, tt := range tests {
		if got := segments(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("segments(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

// TestBestMaskScoresLowest checks that the chosen mask has the lowest
// penalty of the eight, rather than rsc.io/qr's fixed mask 0.
func TestBestMaskScoresLowest(t *testing.T) {
	segs := segments("otpauth://totp/otpgate:alice@web1?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=otpgate")
	v, l := coding.Version(5), coding.L
	best, err := bestMask(v, l, segs)
	if err != nil {
		t.Fatal(err)
	}
	scores := map[int]bool{}
	for m := coding.Mask(0); m < 8; m++ {
		p, err := coding.NewPlan(v, l, m)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.Encode(segs...)
		if err != nil {
			t.Fatal(err)
		}
		s := penalty(c)
		scores[s] = true
		if s < penalty(best) {
			t.Errorf("mask %d scores %d, lower than the chosen code's %d", m, s, penalty(best))
		}
	}
	if len(scores) < 2 {
		t.Errorf("all masks score the same (%v): the penalty does not tell them apart", scores)
	}
}
