// Command reflib is the comparison suite's reference Go library: a cgo
// c-shared object with the entry point the C loader (pam/loader.c) calls in
// libpam_otpgate_go.so, which returns PAM_SUCCESS at once. Loaded through
// the loader's golib= argument in a fresh process per login, it costs what
// any Go library costs there (dlopen and the Go runtime's start) and nothing
// else, so that pam_otpgate's own work is its difference to this one.
package main

/*
#cgo LDFLAGS: -lpam
#include <security/pam_modules.h>
*/
import "C"

//export otpgate_pam_authenticate
func otpgate_pam_authenticate(pamh *C.pam_handle_t, flags, argc C.int, argv **C.char) C.int {
	return C.PAM_SUCCESS
}

func main() {}
