// Package protocol defines the messages that otpgated exchanges with its
// clients (the PAM module, otpgate-sshd and the otpgate CLI) over a Unix
// socket, their bounded wire encoding, and the client used by all of them.
//
// A frame is a 4-byte big-endian length followed by that many bytes of JSON.
// Frames larger than MaxFrame are refused before they are read. Every message
// carries the protocol version V and a request ID that the reply echoes, so a
// client never mistakes one reply for another.
package protocol
