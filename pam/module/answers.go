package main

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/otpgate/otpgate/internal/protocol"
)

// fitAnswer makes a typed answer fit the protocol, which carries valid
// UTF-8 of at most protocol.MaxAnswerLen bytes: invalid bytes become
// U+FFFD and a longer answer is cut at a character boundary. otpgated then
// refuses such an answer in words like any other that is not a code; the
// relay only keeps the request well-formed. It may return a new slice, in
// which case answer is wiped.
func fitAnswer(answer []byte) []byte {
	if !utf8.Valid(answer) {
		fixed := bytes.ToValidUTF8(answer, []byte("\uFFFD"))
		clear(answer)
		answer = fixed
	}
	if len(answer) > protocol.MaxAnswerLen {
		cut := protocol.MaxAnswerLen
		for cut > 0 && !utf8.RuneStart(answer[cut]) {
			cut--
		}
		clear(answer[cut:])
		answer = answer[:cut]
	}
	return answer
}

// answerStrings returns the answers as the strings a request carries,
// without copying them: each string aliases its buffer, so that wiping the
// buffers (wipeAll) after the request was sent wipes the strings too. The
// strings must not be used after that.
func answerStrings(answers [][]byte) []string {
	out := make([]string, len(answers))
	for i, a := range answers {
		if len(a) > 0 {
			out[i] = unsafe.String(&a[0], len(a)) //nolint:gosec // zero-copy on purpose: wiping the buffers wipes the strings
		}
	}
	return out
}

// wipeAll zeroes every buffer of bufs.
func wipeAll(bufs [][]byte) {
	for _, b := range bufs {
		clear(b)
	}
}
