/*
 * pam_otpgate.so: the file PAM loads. A small C module that starts no Go
 * runtime until pam_sm_authenticate runs.
 *
 * Linux-PAM dlopens every module of a service in pam_start. sshd calls
 * pam_start in its monitor and then forks the "[pam]" child that runs
 * pam_authenticate; a Go runtime started before that fork can deadlock in
 * the child (docs/pam.md, "Why a C loader"). So this module does everything
 * it can in C and dlopens the Go library (libpam_otpgate_go.so, which talks
 * to otpgated) only inside pam_sm_authenticate, in the process that needs it.
 *
 * Fail closed: if the Go library cannot be found, trusted, loaded or
 * resolved, pam_sm_authenticate returns PAM_AUTHINFO_UNAVAIL and logs to
 * syslog (LOG_AUTHPRIV). It never returns PAM_SUCCESS or PAM_IGNORE itself.
 *
 * Only the pam_sm_* entry points are exported (pam_otpgate.map).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#define PAM_SM_PASSWORD
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#ifndef OTPGATE_GOLIB
#define OTPGATE_GOLIB "/usr/lib/otpgate/libpam_otpgate_go.so"
#endif

/* The one symbol the Go library exports (pam/module/export.go). */
#define OTPGATE_GOLIB_SYMBOL "otpgate_pam_authenticate"

/* The module argument that names another Go library (tests). */
#define GOLIB_ARG "golib="

typedef int (*otpgate_auth_fn)(pam_handle_t *pamh, int flags, int argc,
			       const char **argv);

/*
 * trusted_dir reports whether dir (absolute, resolved) is a directory owned
 * by root that no one else can write to: not group/world-writable unless the
 * sticky bit stops others from replacing root's entries (as in /tmp).
 */
static int trusted_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
		return 0;
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return 0;
	return 1;
}

/*
 * trusted_path resolves path into resolved (PATH_MAX bytes) and reports
 * whether it is a regular file owned by root, not group/world-writable, in
 * a chain of directories only root can change. It logs why not.
 */
static int trusted_path(pam_handle_t *pamh, const char *path, char *resolved)
{
	struct stat st;
	char dir[PATH_MAX];
	char *slash;

	if (path[0] != '/') {
		pam_syslog(pamh, LOG_ERR, "go library path %s is not absolute", path);
		return 0;
	}
	if (realpath(path, resolved) == NULL) {
		pam_syslog(pamh, LOG_ERR, "go library %s: %m", path);
		return 0;
	}
	if (stat(resolved, &st) != 0) {
		pam_syslog(pamh, LOG_ERR, "go library %s: %m", resolved);
		return 0;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		pam_syslog(pamh, LOG_ERR,
			   "go library %s is not a regular root-owned file without group/world write permission",
			   resolved);
		return 0;
	}
	/* realpath output is absolute and shorter than PATH_MAX. */
	memcpy(dir, resolved, strlen(resolved) + 1);
	for (;;) {
		slash = strrchr(dir, '/');
		if (slash == NULL)
			return 0;
		if (slash == dir)
			slash[1] = '\0';
		else
			slash[0] = '\0';
		if (!trusted_dir(dir)) {
			pam_syslog(pamh, LOG_ERR,
				   "go library %s: directory %s may be changed by users other than root",
				   resolved, dir);
			return 0;
		}
		if (strcmp(dir, "/") == 0)
			return 1;
	}
}

/* golib_path returns the Go library named by a golib= argument, or the default. */
static const char *golib_path(int argc, const char **argv)
{
	const char *path = OTPGATE_GOLIB;
	int i;

	for (i = 0; i < argc; i++) {
		if (argv[i] != NULL && strncmp(argv[i], GOLIB_ARG, strlen(GOLIB_ARG)) == 0)
			path = argv[i] + strlen(GOLIB_ARG);
	}
	return path;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
				   const char **argv)
{
	char resolved[PATH_MAX];
	const char *path = golib_path(argc, argv);
	otpgate_auth_fn auth;
	void *lib;
	int ret;

	if (!trusted_path(pamh, path, resolved))
		return PAM_AUTHINFO_UNAVAIL;

	/*
	 * The Go runtime cannot be unloaded (it links with -z nodelete), so
	 * the handle is never closed; a second dlopen returns the same one.
	 */
	lib = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot load go library %s: %s",
			   resolved, dlerror());
		return PAM_AUTHINFO_UNAVAIL;
	}
	*(void **)(&auth) = dlsym(lib, OTPGATE_GOLIB_SYMBOL);
	if (auth == NULL) {
		pam_syslog(pamh, LOG_ERR, "go library %s has no %s", resolved,
			   OTPGATE_GOLIB_SYMBOL);
		return PAM_AUTHINFO_UNAVAIL;
	}
	ret = auth(pamh, flags, argc, argv);
	/* Only a defined PAM code passes; anything else fails closed. */
	if (ret < 0 || ret >= _PAM_RETURN_VALUES) {
		pam_syslog(pamh, LOG_ERR, "go library returned invalid code %d", ret);
		return PAM_AUTHINFO_UNAVAIL;
	}
	return ret;
}

/* FIXED_ANSWER defines a PAM service function that answers value without loading Go. */
#define FIXED_ANSWER(name, value)                                              \
	PAM_EXTERN int name(pam_handle_t *pamh, int flags, int argc,           \
			    const char **argv)                                 \
	{                                                                      \
		(void)pamh;                                                    \
		(void)flags;                                                   \
		(void)argc;                                                    \
		(void)argv;                                                    \
		return value;                                                  \
	}

/*
 * pam_sm_setcred must succeed: returning PAM_IGNORE here makes libpam fail
 * pam_setcred with PAM_PERM_DENIED when no other auth module set
 * credentials (sshd then drops the session). The module has no credentials.
 */
FIXED_ANSWER(pam_sm_setcred, PAM_SUCCESS)

/* The module takes no part in account, session or password management. */
FIXED_ANSWER(pam_sm_acct_mgmt, PAM_IGNORE)
FIXED_ANSWER(pam_sm_open_session, PAM_IGNORE)
FIXED_ANSWER(pam_sm_close_session, PAM_IGNORE)
FIXED_ANSWER(pam_sm_chauthtok, PAM_IGNORE)
