//go:build go_pam_module

package main

/*
#cgo CFLAGS: -Wall -D_GNU_SOURCE
#cgo LDFLAGS: -lpam
#include <stdlib.h>
#include <string.h>
#include <security/pam_appl.h>
#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include <syslog.h>

// otpgate_converse sends the n messages of styles and texts in one call of
// the application's conversation function. On success answers[i] is the
// malloc'ed answer to each prompt (NULL for the other messages) and
// lens[i] its length; free each with otpgate_wipe_free. On failure nothing
// is left allocated.
static inline int otpgate_converse(pam_handle_t *pamh, int n, const int *styles, char *const *texts,
				   char **answers, size_t *lens)
{
	const struct pam_conv *conv = NULL;
	struct pam_message *msgs;
	const struct pam_message **pmsgs;
	struct pam_response *resp = NULL;
	int rc, i;

	for (i = 0; i < n; i++) {
		answers[i] = NULL;
		lens[i] = 0;
	}
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS)
		return rc;
	if (conv == NULL || conv->conv == NULL)
		return PAM_CONV_ERR;
	msgs = calloc(n, sizeof(*msgs));
	pmsgs = calloc(n, sizeof(*pmsgs));
	if (msgs == NULL || pmsgs == NULL) {
		free(msgs);
		free(pmsgs);
		return PAM_BUF_ERR;
	}
	for (i = 0; i < n; i++) {
		msgs[i].msg_style = styles[i];
		msgs[i].msg = texts[i];
		pmsgs[i] = &msgs[i];
	}
	rc = conv->conv(n, pmsgs, &resp, conv->appdata_ptr);
	free(msgs);
	free(pmsgs);
	if (rc == PAM_SUCCESS && resp == NULL)
		rc = PAM_CONV_ERR;
	for (i = 0; rc == PAM_SUCCESS && i < n; i++) {
		int prompt = styles[i] == PAM_PROMPT_ECHO_OFF || styles[i] == PAM_PROMPT_ECHO_ON;
		if (prompt && resp[i].resp == NULL)
			rc = PAM_CONV_ERR;
	}
	for (i = 0; resp != NULL && i < n; i++) {
		int prompt = styles[i] == PAM_PROMPT_ECHO_OFF || styles[i] == PAM_PROMPT_ECHO_ON;
		if (resp[i].resp == NULL)
			continue;
		if (rc == PAM_SUCCESS && prompt) {
			answers[i] = resp[i].resp;
			lens[i] = strlen(resp[i].resp);
			continue;
		}
		explicit_bzero(resp[i].resp, strlen(resp[i].resp));
		free(resp[i].resp);
	}
	free(resp);
	return rc;
}

// otpgate_wipe_free zeroes and frees an answer from otpgate_prompt.
static inline void otpgate_wipe_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

// otpgate_syslog logs msg through libpam, which tags it with the module
// and the service and logs it with syslog(3) at LOG_AUTHPRIV; without a
// handle it logs through syslog(3) directly, at the same facility.
static inline void otpgate_syslog(pam_handle_t *pamh, int prio, const char *msg)
{
	if (pamh == NULL) {
		syslog(LOG_AUTHPRIV | prio, "pam_otpgate: %s", msg);
		return;
	}
	pam_syslog(pamh, prio, "%s", msg);
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
	"os"
	"unsafe"

	"github.com/msteinert/pam/v2"
)

// maxAnswer bounds what the person may type (a password plus a code); a
// longer answer is a conversation error. Answers up to it are cut to the
// protocol's limit (fitAnswer), so that otpgated refuses them in words.
const maxAnswer = 4096

// nativeSession is the libpam transaction of one call: msteinert/pam's
// module transaction plus the secret-handling methods of session.
type nativeSession struct {
	pam.ModuleTransaction
	pamh *C.pam_handle_t
}

func (s *nativeSession) converse(msgs []convMessage) ([][]byte, error) {
	n := len(msgs)
	if n == 0 {
		return nil, nil
	}
	if n > C.PAM_MAX_NUM_MSG {
		return nil, fmt.Errorf("%w: %d messages in one call, at most %d", pam.ErrConv, n, C.PAM_MAX_NUM_MSG)
	}
	// The arrays live in C memory: the texts must be NUL-terminated C
	// strings, and cgo forbids passing Go memory that holds pointers.
	styles := (*[C.PAM_MAX_NUM_MSG]C.int)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.int(0)))))
	texts := (*[C.PAM_MAX_NUM_MSG]*C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	answers := (*[C.PAM_MAX_NUM_MSG]*C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	lens := (*[C.PAM_MAX_NUM_MSG]C.size_t)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.size_t(0)))))
	defer C.free(unsafe.Pointer(styles))
	defer C.free(unsafe.Pointer(texts))
	defer C.free(unsafe.Pointer(answers))
	defer C.free(unsafe.Pointer(lens))
	if styles == nil || texts == nil || answers == nil || lens == nil {
		return nil, pam.ErrBuf
	}
	for i, m := range msgs {
		styles[i] = C.int(m.style)
		texts[i] = C.CString(m.text)
		defer C.free(unsafe.Pointer(texts[i]))
	}
	if rc := C.otpgate_converse(s.pamh, C.int(n), &styles[0], &texts[0], &answers[0], &lens[0]); rc != C.PAM_SUCCESS {
		return nil, pam.Error(rc)
	}
	out := make([][]byte, n)
	var err error
	for i := range n {
		if answers[i] == nil {
			continue
		}
		if lens[i] > maxAnswer {
			err = fmt.Errorf("%w: answer longer than %d bytes", pam.ErrConv, maxAnswer)
		} else if err == nil {
			out[i] = C.GoBytes(unsafe.Pointer(answers[i]), C.int(lens[i]))
		}
		C.otpgate_wipe_free(answers[i], lens[i])
	}
	if err != nil {
		wipeAll(out)
		return nil, err
	}
	return out, nil
}

func (s *nativeSession) setAuthtok(tok string) error {
	// The string's bytes are copied by C, never kept.
	p := (*C.char)(unsafe.Pointer(unsafe.StringData(tok)))
	if rc := C.otpgate_set_authtok(s.pamh, p, C.size_t(len(tok))); rc != C.PAM_SUCCESS {
		return pam.Error(rc)
	}
	return nil
}

func (s *nativeSession) syslog(prio priority, line string) {
	pamSyslog(s.pamh, prio, line)
}

// pamSyslog logs line through pam_syslog(3) for pamh (syslog(3) when pamh
// is nil).
func pamSyslog(pamh *C.pam_handle_t, prio priority, line string) {
	msg := C.CString(line)
	defer C.free(unsafe.Pointer(msg))
	C.otpgate_syslog(pamh, C.int(prio), msg)
}

func (s *nativeSession) application() string {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return ""
	}
	return exe
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
			lg := &logger{out: func(prio priority, line string) { pamSyslog(pamh, prio, line) }}
			lg.error("internal error (panic): %v; denying", r)
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
