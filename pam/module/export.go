//go:build go_pam_module

package main

/*
#cgo CFLAGS: -Wall -D_GNU_SOURCE
#cgo LDFLAGS: -lpam
#include <stdlib.h>
#include <string.h>
#include <security/pam_appl.h>
#include <security/pam_modules.h>

// otpgate_prompt asks text with PAM_PROMPT_ECHO_OFF. On success *out is the
// malloc'ed answer and *outlen its length; free it with otpgate_wipe_free.
static inline int otpgate_prompt(pam_handle_t *pamh, const char *text, char **out, size_t *outlen)
{
	const struct pam_conv *conv = NULL;
	struct pam_message msg = { PAM_PROMPT_ECHO_OFF, text };
	const struct pam_message *msgs[1] = { &msg };
	struct pam_response *resp = NULL;
	int rc;

	*out = NULL;
	*outlen = 0;
	rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS)
		return rc;
	if (conv == NULL || conv->conv == NULL)
		return PAM_CONV_ERR;
	rc = conv->conv(1, msgs, &resp, conv->appdata_ptr);
	if (rc != PAM_SUCCESS || resp == NULL || resp[0].resp == NULL) {
		if (resp != NULL) {
			if (resp[0].resp != NULL) {
				explicit_bzero(resp[0].resp, strlen(resp[0].resp));
				free(resp[0].resp);
			}
			free(resp);
		}
		return rc != PAM_SUCCESS ? rc : PAM_CONV_ERR;
	}
	*out = resp[0].resp;
	*outlen = strlen(resp[0].resp);
	free(resp);
	return PAM_SUCCESS;
}

// otpgate_wipe_free zeroes and frees an answer from otpgate_prompt.
static inline void otpgate_wipe_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

// otpgate_set_authtok sets PAM_AUTHTOK from n bytes of tok through a
// NUL-terminated copy that is wiped afterwards (libpam keeps its own copy).
static inline int otpgate_set_authtok(pam_handle_t *pamh, const char *tok, size_t n)
{
	char *c = malloc(n + 1);
	int rc;

	if (c == NULL)
		return PAM_BUF_ERR;
	if (n > 0)
		memcpy(c, tok, n);
	c[n] = '\0';
	rc = pam_set_item(pamh, PAM_AUTHTOK, c);
	explicit_bzero(c, n);
	free(c);
	return rc;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/msteinert/pam/v2"
)

// maxAnswer bounds what the user may type (a password plus a code).
const maxAnswer = 4096

// nativeSession is the libpam transaction of one call: msteinert/pam's
// module transaction plus the secret-handling methods of session.
type nativeSession struct {
	pam.ModuleTransaction
	pamh *C.pam_handle_t
}

func (s *nativeSession) promptSecret(prompt string) ([]byte, error) {
	cPrompt := C.CString(prompt)
	defer C.free(unsafe.Pointer(cPrompt))
	var out *C.char
	var n C.size_t
	if rc := C.otpgate_prompt(s.pamh, cPrompt, &out, &n); rc != C.PAM_SUCCESS {
		return nil, pam.Error(rc)
	}
	defer C.otpgate_wipe_free(out, n)
	if n > maxAnswer {
		return nil, fmt.Errorf("%w: answer longer than %d bytes", pam.ErrConv, maxAnswer)
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

func (s *nativeSession) setAuthtok(tok []byte) error {
	var p *C.char
	if len(tok) > 0 {
		p = (*C.char)(unsafe.Pointer(&tok[0]))
	}
	if rc := C.otpgate_set_authtok(s.pamh, p, C.size_t(len(tok))); rc != C.PAM_SUCCESS {
		return pam.Error(rc)
	}
	return nil
}

// otpgate_pam_authenticate is the library's only export, called by
// pam_sm_authenticate in pam/loader.c with the same arguments. It never
// writes to stderr, and a panic fails closed.
//
//export otpgate_pam_authenticate
func otpgate_pam_authenticate(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) (status C.int) {
	status = C.PAM_AUTHINFO_UNAVAIL
	defer func() {
		if r := recover(); r != nil {
			(&logger{}).error("internal error (panic): %v; denying", r)
			status = C.PAM_AUTHINFO_UNAVAIL
		}
	}()
	if pamh == nil || argc < 0 {
		return C.PAM_AUTHINFO_UNAVAIL
	}
	var args []string
	if argc > 0 && argv != nil {
		for _, a := range unsafe.Slice(argv, int(argc)) {
			if a != nil {
				args = append(args, C.GoString(a))
			}
		}
	}
	s := &nativeSession{
		ModuleTransaction: pam.NewModuleTransactionInvoker(pam.NativeHandle(unsafe.Pointer(pamh))),
		pamh:              pamh,
	}
	err := pamModuleHandler.Authenticate(s, pam.Flags(flags), args)
	return C.int(pamStatus(err))
}
