package otp_test

import (
	"testing"

	"github.com/otpgate/otpgate/otp"
)

// Results recorded in docs/BENCHMARKS.md ("## otp"), from:
//
//	go test -run '^$' -bench . -benchmem ./otp

// Sinks keep the compiler from discarding benchmarked calls.
var (
	sinkCode string
	sinkStep uint64
	sinkOK   bool
)

var benchAlgorithms = []otp.Algorithm{otp.SHA1, otp.SHA256, otp.SHA512}

func BenchmarkHOTP(b *testing.B) {
	for _, alg := range benchAlgorithms {
		b.Run(alg.String(), func(b *testing.B) {
			secret := rfcSeed(b, alg)
			b.ReportAllocs()
			counter := uint64(0)
			for b.Loop() {
				sinkCode = otp.HOTP(secret, counter, alg, 6)
				counter++
			}
		})
	}
}

// benchmarkVerify measures Verify over a window of skew steps on either
// side. Verify does the same work whether and where the code matches, so
// one code (the centre's) stands for all.
func benchmarkVerify(b *testing.B, skew int) {
	for _, alg := range benchAlgorithms {
		b.Run(alg.String(), func(b *testing.B) {
			secret := rfcSeed(b, alg)
			p := otp.Params{Algorithm: alg, Digits: 6, Period: 30}
			center := uint64(56666666)
			code := otp.HOTP(secret, center, alg, p.Digits)
			b.ReportAllocs()
			for b.Loop() {
				sinkStep, sinkOK = otp.Verify(secret, code, center, skew, skew, p)
			}
			if !sinkOK {
				b.Fatal("the centre's code did not verify")
			}
		})
	}
}

// BenchmarkVerifyWindow is the recommended window: one step either side
// (RFC 6238 §5.2), 3 HMACs.
func BenchmarkVerifyWindow(b *testing.B) { benchmarkVerify(b, 1) }

// BenchmarkVerifyWindow41 is a ±20-step window (41 HMACs), as for a clock
// drift diagnosis.
func BenchmarkVerifyWindow41(b *testing.B) { benchmarkVerify(b, 20) }
