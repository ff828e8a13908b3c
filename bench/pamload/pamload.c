/*
 * pamload: a PAM load generator for the comparison benchmarks (bench/compare).
 *
 * It drives libpam the way sshd and sudo do: one transaction is
 *   pam_start -> PAM_RHOST, PAM_TTY -> pam_authenticate -> pam_acct_mgmt -> pam_end
 * and the conversation answers every prompt with the user's current TOTP code
 * (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, computed here at prompt time),
 * or with a code that is wrong for every step within +-50 of now (-m wrong).
 * It is a C client on purpose: a Go PAM application would load a second Go
 * runtime into the process with pam_otpgate's Go library.
 *
 * One run is one pass over the users of USERSFILE (lines "user base32secret"),
 * each user authenticating once, because every module measured refuses a
 * code's reuse. Workers take the next user from a shared counter.
 *
 * Worker models (-w):
 *   procs    c worker processes, each running transactions one after the
 *            other (modules loaded by pam_start are unloaded by pam_end,
 *            but a Go c-shared library stays, so its runtime starts once per
 *            worker)
 *   threads  c threads of one process
 *   fresh    a new process (fork of a parent that never called PAM) per
 *            transaction, at most c at once: every transaction loads the
 *            modules into a fresh process, as sshd's per-connection child
 *
 * Output: one line
 *   RESULT service= model= mode= c= n= ok= fail= secs= rate= ok_rate= p50= p90= p99= max= auth_p50= auth_p99= cpu_ms=
 * (latencies in ms; cpu_ms is the user + system CPU time of the workers) plus "RC code=count" lines for failures, and with
 * --records FILE one line per transaction:
 *   idx user_index ok pam_rc total_ms auth_ms wall_ms start_ms cpu_ms
 * (wall_ms is fork to reap in the fresh model, else total_ms; start_ms is
 * relative to the start of the run; cpu_ms is the user + system CPU time of
 * the transaction's process in the fresh model, from wait4, else 0).
 *
 *   pamload --totp BASE32 [--time T] [--digits D]   print the code for T (default now)
 *   pamload --selftest                              RFC 4226 / RFC 6238 vectors
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- SHA-1 */

typedef struct {
	uint32_t h[5];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
} sha1_ctx;

static uint32_t rol(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

static void sha1_block(sha1_ctx *c, const uint8_t *p)
{
	uint32_t w[80], a, b, cc, d, e, f, k, t;
	int i;
	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20)
			f = (b & cc) | (~b & d), k = 0x5A827999;
		else if (i < 40)
			f = b ^ cc ^ d, k = 0x6ED9EBA1;
		else if (i < 60)
			f = (b & cc) | (b & d) | (cc & d), k = 0x8F1BBCDC;
		else
			f = b ^ cc ^ d, k = 0xCA62C1D6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d, d = cc, cc = rol(b, 30), b = a, a = t;
	}
	c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e;
}

static void sha1_init(sha1_ctx *c)
{
	static const uint32_t h0[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	memcpy(c->h, h0, sizeof h0);
	c->len = 0;
	c->n = 0;
}

static void sha1_update(sha1_ctx *c, const uint8_t *p, size_t len)
{
	c->len += len;
	while (len > 0) {
		size_t m = 64 - c->n < len ? 64 - c->n : len;
		memcpy(c->buf + c->n, p, m);
		c->n += m, p += m, len -= m;
		if (c->n == 64) {
			sha1_block(c, c->buf);
			c->n = 0;
		}
	}
}

static void sha1_final(sha1_ctx *c, uint8_t out[20])
{
	uint64_t bits = c->len * 8;
	uint8_t pad = 0x80, zero = 0, lenb[8];
	int i;
	sha1_update(c, &pad, 1);
	while (c->n != 56)
		sha1_update(c, &zero, 1);
	for (i = 0; i < 8; i++)
		lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha1_update(c, lenb, 8);
	for (i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
}

static void hmac_sha1(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen, uint8_t out[20])
{
	uint8_t k[64] = {0}, ipad[64], opad[64], inner[20];
	sha1_ctx c;
	int i;
	if (klen > 64) {
		sha1_init(&c);
		sha1_update(&c, key, klen);
		sha1_final(&c, k);
	} else {
		memcpy(k, key, klen);
	}
	for (i = 0; i < 64; i++)
		ipad[i] = k[i] ^ 0x36, opad[i] = k[i] ^ 0x5c;
	sha1_init(&c);
	sha1_update(&c, ipad, 64);
	sha1_update(&c, msg, mlen);
	sha1_final(&c, inner);
	sha1_init(&c);
	sha1_update(&c, opad, 64);
	sha1_update(&c, inner, 20);
	sha1_final(&c, out);
}

/* RFC 4226 HOTP with dynamic truncation. */
static uint32_t hotp(const uint8_t *key, size_t klen, uint64_t counter, int digits)
{
	uint8_t msg[8], mac[20];
	uint32_t bin, mod = 1;
	int i, off;
	for (i = 0; i < 8; i++)
		msg[i] = (uint8_t)(counter >> (56 - 8 * i));
	hmac_sha1(key, klen, msg, 8, mac);
	off = mac[19] & 0x0f;
	bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 | (uint32_t)mac[off + 2] << 8 | mac[off + 3];
	for (i = 0; i < digits; i++)
		mod *= 10;
	return bin % mod;
}

/* base32 (RFC 4648, case-insensitive, padding and spaces ignored). Returns
 * the decoded length or -1. */
static int base32_decode(const char *s, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (; *s; s++) {
		int v;
		char ch = *s;
		if (ch == '=' || ch == ' ' || ch == '-')
			continue;
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= '2' && ch <= '7')
			v = ch - '2' + 26;
		else
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (n >= cap)
				return -1;
			out[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return (int)n;
}

#define STEP 30
#define DIGITS 6

/* A code that matches no step within +-50 of t. */
static uint32_t wrong_code(const uint8_t *key, size_t klen, time_t t)
{
	uint32_t near[101], code;
	int i, clash;
	for (i = 0; i < 101; i++)
		near[i] = hotp(key, klen, (uint64_t)(t / STEP) + (uint64_t)i - 50, DIGITS);
	code = (near[50] + 500000) % 1000000;
	do {
		clash = 0;
		for (i = 0; i < 101; i++)
			if (near[i] == code) {
				clash = 1;
				code = (code + 1) % 1000000;
				break;
			}
	} while (clash);
	return code;
}

/* ---------------------------------------------------------------- users */

typedef struct {
	char *name;
	uint8_t key[64];
	int klen;
} user_t;

static user_t *users;
static int nusers;

static int load_users(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int cap = 1024;
	if (!f) {
		perror(path);
		return -1;
	}
	users = calloc((size_t)cap, sizeof *users);
	while (fgets(line, sizeof line, f)) {
		char name[512], secret[512];
		if (sscanf(line, "%511s %511s", name, secret) != 2 || name[0] == '#')
			continue;
		if (nusers == cap) {
			cap *= 2;
			users = realloc(users, (size_t)cap * sizeof *users);
		}
		users[nusers].name = strdup(name);
		users[nusers].klen = base32_decode(secret, users[nusers].key, sizeof users[nusers].key);
		if (users[nusers].klen <= 0) {
			fprintf(stderr, "pamload: %s: bad base32 secret for %s\n", path, name);
			fclose(f);
			return -1;
		}
		nusers++;
	}
	fclose(f);
	return 0;
}

/* ---------------------------------------------------------------- options */

enum { MODEL_PROCS, MODEL_THREADS, MODEL_FRESH };
enum { MODE_CODE, MODE_WRONG };

static const char *service, *usersfile, *recordsfile, *rhost = "127.0.0.1", *tty = "ssh";
static int conc = 1, model = MODEL_PROCS, mode = MODE_CODE, limit = -1, sync_start, same_user, keep_fail_delay;
static int first_user;
static time_t code_time; /* 0: the time of each prompt */
static double time_limit = 20;

/* ---------------------------------------------------------------- shared state */

typedef struct {
	int32_t user;
	int32_t ok;
	int32_t rc;
	int32_t prompts;
	double total_ms, auth_ms, wall_ms, start_ms;
	double cpu_ms; /* fresh model: the transaction's process, from wait4 */
} rec_t;

typedef struct {
	int next; /* next transaction index */
	int stop; /* time limit reached */
	int done;
	double t0;
	rec_t recs[];
} shared_t;

static shared_t *sh;
static int ntx; /* transactions in the pass */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- PAM */

typedef struct {
	const user_t *u;
	int prompts;
} appdata_t;

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	appdata_t *ad = data;
	struct pam_response *r = calloc((size_t)n, sizeof *r);
	int i;
	if (!r)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			char buf[16];
			time_t t = code_time ? code_time : time(NULL);
			uint32_t code = mode == MODE_WRONG ? wrong_code(ad->u->key, (size_t)ad->u->klen, t)
							  : hotp(ad->u->key, (size_t)ad->u->klen, (uint64_t)(t / STEP), DIGITS);
			snprintf(buf, sizeof buf, "%06u", code);
			r[i].resp = strdup(buf);
			ad->prompts++;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static void no_delay(int retval, unsigned usec_delay, void *appdata)
{
	(void)retval, (void)usec_delay, (void)appdata;
}

/* One transaction for transaction index i. */
static void transaction(int i)
{
	rec_t *rec = &sh->recs[i];
	int ui = same_user ? first_user : (first_user + i) % nusers;
	appdata_t ad = {&users[ui], 0};
	struct pam_conv pc = {conv, &ad};
	pam_handle_t *pamh = NULL;
	double t0, t1, t2, t3;
	int rc;

	t0 = now_ms();
	rc = pam_start(service, users[ui].name, &pc, &pamh);
	if (rc == PAM_SUCCESS) {
		pam_set_item(pamh, PAM_RHOST, rhost);
		pam_set_item(pamh, PAM_TTY, tty);
		if (!keep_fail_delay)
			pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay);
		t1 = now_ms();
		rc = pam_authenticate(pamh, 0);
		t2 = now_ms();
		if (rc == PAM_SUCCESS)
			rc = pam_acct_mgmt(pamh, 0);
		pam_end(pamh, rc);
	} else {
		t1 = t2 = now_ms();
	}
	t3 = now_ms();
	rec->user = ui;
	rec->ok = rc == PAM_SUCCESS;
	rec->rc = rc;
	rec->prompts = ad.prompts;
	rec->total_ms = t3 - t0;
	rec->auth_ms = t2 - t1;
	rec->wall_ms = t3 - t0;
	rec->start_ms = t0 - sh->t0;
}

static int take(void)
{
	int i;
	if (__atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
		return -1;
	if (now_ms() - sh->t0 > time_limit * 1e3) {
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
		return -1;
	}
	i = __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED);
	return i < ntx ? i : -1;
}

static int gate[2] = {-1, -1}; /* --sync, processes: workers block reading */
static pthread_barrier_t barrier;

static void worker_loop(void)
{
	int i;
	if (sync_start && model == MODEL_PROCS) {
		char ch;
		close(gate[1]);
		while (read(gate[0], &ch, 1) < 0 && errno == EINTR)
			;
	}
	while ((i = take()) >= 0) {
		transaction(i);
		__atomic_fetch_add(&sh->done, 1, __ATOMIC_RELAXED);
	}
}

static void *thread_main(void *arg)
{
	(void)arg;
	if (sync_start)
		pthread_barrier_wait(&barrier);
	worker_loop();
	return NULL;
}

static int run_procs(void)
{
	pid_t *pids = calloc((size_t)conc, sizeof *pids);
	int w, status, bad = 0;
	if (sync_start && pipe(gate) < 0)
		return perror("pipe"), -1;
	for (w = 0; w < conc; w++) {
		pids[w] = fork();
		if (pids[w] < 0)
			return perror("fork"), -1;
		if (pids[w] == 0) {
			worker_loop();
			_exit(0);
		}
	}
	if (sync_start) {
		close(gate[0]);
		usleep(20000); /* let every worker reach read() */
		sh->t0 = now_ms();
		close(gate[1]);
	}
	for (w = 0; w < conc; w++)
		if (waitpid(pids[w], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	free(pids);
	return bad ? -1 : 0;
}

static int run_threads(void)
{
	pthread_t *th = calloc((size_t)conc, sizeof *th);
	int w;
	if (sync_start)
		pthread_barrier_init(&barrier, NULL, (unsigned)conc);
	for (w = 0; w < conc; w++)
		if (pthread_create(&th[w], NULL, thread_main, NULL) != 0)
			return fprintf(stderr, "pthread_create failed\n"), -1;
	for (w = 0; w < conc; w++)
		pthread_join(th[w], NULL);
	free(th);
	return 0;
}

/* fresh: one child per transaction, at most conc alive. */
static int run_fresh(void)
{
	pid_t *pids = calloc((size_t)ntx, sizeof *pids);
	double *forked = calloc((size_t)ntx, sizeof *forked);
	int alive = 0, started = 0, bad = 0, status, i;
	if (sync_start && pipe(gate) < 0)
		return perror("pipe"), -1;
	for (;;) {
		while (alive < conc && !sh->stop) {
			if (sync_start ? started >= ntx : (i = take()) < 0)
				break;
			if (sync_start)
				i = started;
			started++;
			forked[i] = now_ms();
			pids[i] = fork();
			if (pids[i] < 0)
				return perror("fork"), -1;
			if (pids[i] == 0) {
				if (sync_start) {
					char ch;
					close(gate[1]);
					while (read(gate[0], &ch, 1) < 0 && errno == EINTR)
						;
				}
				transaction(i);
				_exit(0);
			}
			alive++;
		}
		if (sync_start && started == ntx && gate[1] >= 0) {
			close(gate[0]);
			usleep(20000);
			close(gate[1]);
			gate[1] = -1;
		}
		if (alive == 0)
			break;
		{
			struct rusage ru;
			pid_t p = wait4(-1, &status, 0, &ru);
			if (p < 0)
				break;
			alive--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				bad++;
			for (i = 0; i < started; i++)
				if (pids[i] == p) {
					sh->recs[i].wall_ms = now_ms() - forked[i];
					sh->recs[i].cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
							     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
					__atomic_fetch_add(&sh->done, 1, __ATOMIC_RELAXED);
					break;
				}
		}
	}
	sh->next = started;
	free(pids);
	free(forked);
	return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- stats */

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted v[0..n) */
static double pct(const double *v, int n, double p)
{
	int k;
	if (n == 0)
		return 0;
	k = (int)(p / 100.0 * n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return v[k];
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pamload -s SERVICE -u USERSFILE [-c N] [-w procs|threads|fresh] [-m code|wrong] [-n MAX]\n"
		"               [--first I] [--same] [--sync] [--freeze | --code-time T] [--time-limit S]\n"
		"               [--records FILE] [--rhost H] [--tty T] [--fail-delay]\n"
		"       pamload --totp BASE32 [--time T] [--digits D]\n"
		"       pamload --selftest\n");
	exit(2);
}

static int selftest(void)
{
	/* RFC 4226 appendix D and RFC 6238 appendix B (SHA-1). */
	static const uint32_t hotpv[10] = {755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489};
	static const struct {
		long t;
		uint32_t code;
	} totpv[] = {{59, 94287082}, {1111111109, 7081804}, {1111111111, 14050471}, {1234567890, 89005924}, {2000000000, 69279037}, {20000000000L, 65353130}};
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	uint8_t dec[64];
	int i, fails = 0;
	for (i = 0; i < 10; i++)
		if (hotp(key, 20, (uint64_t)i, 6) != hotpv[i])
			fprintf(stderr, "HOTP count %d: got %06u\n", i, hotp(key, 20, (uint64_t)i, 6)), fails++;
	for (i = 0; i < (int)(sizeof totpv / sizeof totpv[0]); i++)
		if (hotp(key, 20, (uint64_t)(totpv[i].t / 30), 8) != totpv[i].code)
			fprintf(stderr, "TOTP t=%ld: got %08u\n", totpv[i].t, hotp(key, 20, (uint64_t)(totpv[i].t / 30), 8)), fails++;
	if (base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", dec, sizeof dec) != 20 || memcmp(dec, key, 20) != 0)
		fprintf(stderr, "base32 decode failed\n"), fails++;
	for (i = 0; i < 101; i++) {
		time_t t = 1700000000 + i * 7;
		uint32_t w = wrong_code(key, 20, t);
		int d;
		for (d = -50; d <= 50; d++)
			if (hotp(key, 20, (uint64_t)(t / 30 + d), 6) == w)
				fprintf(stderr, "wrong code matches step %+d\n", d), fails++;
	}
	printf("selftest: %s\n", fails ? "FAIL" : "ok");
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"totp", required_argument, 0, 'T'},	  {"time", required_argument, 0, 't'},
		{"digits", required_argument, 0, 'D'},	  {"selftest", no_argument, 0, 'S'},
		{"sync", no_argument, 0, 'Y'},		  {"freeze", no_argument, 0, 'F'},
		{"code-time", required_argument, 0, 'C'}, {"time-limit", required_argument, 0, 'L'},
		{"records", required_argument, 0, 'R'},	  {"rhost", required_argument, 0, 'H'},
		{"tty", required_argument, 0, 'Y' + 256}, {"same", no_argument, 0, 'U'},
		{"first", required_argument, 0, 'I'},	  {"fail-delay", no_argument, 0, 'E'},
		{0, 0, 0, 0}};
	const char *totp_secret = NULL;
	long totp_time = -1;
	int digits = DIGITS, opt, i, nok = 0, n;
	double t_start, secs, cpu_ms = 0, *tot, *auth, *okl;
	int rcs[64] = {0}, freeze = 0, rcx = 0;
	size_t shsize;

	while ((opt = getopt_long(argc, argv, "s:u:c:w:m:n:", lo, NULL)) != -1) {
		switch (opt) {
		case 's': service = optarg; break;
		case 'u': usersfile = optarg; break;
		case 'c': conc = atoi(optarg); break;
		case 'n': limit = atoi(optarg); break;
		case 'w':
			if (!strcmp(optarg, "procs")) model = MODEL_PROCS;
			else if (!strcmp(optarg, "threads")) model = MODEL_THREADS;
			else if (!strcmp(optarg, "fresh")) model = MODEL_FRESH;
			else usage();
			break;
		case 'm':
			if (!strcmp(optarg, "code")) mode = MODE_CODE;
			else if (!strcmp(optarg, "wrong")) mode = MODE_WRONG;
			else usage();
			break;
		case 'T': totp_secret = optarg; break;
		case 't': totp_time = atol(optarg); break;
		case 'D': digits = atoi(optarg); break;
		case 'S': return selftest();
		case 'Y': sync_start = 1; break;
		case 'F': freeze = 1; break;
		case 'C': code_time = (time_t)atol(optarg); break;
		case 'L': time_limit = atof(optarg); break;
		case 'R': recordsfile = optarg; break;
		case 'H': rhost = optarg; break;
		case 'Y' + 256: tty = optarg; break;
		case 'U': same_user = 1; break;
		case 'I': first_user = atoi(optarg); break;
		case 'E': keep_fail_delay = 1; break;
		default: usage();
		}
	}
	if (totp_secret) {
		uint8_t key[64];
		int klen = base32_decode(totp_secret, key, sizeof key);
		if (klen <= 0 || digits < 6 || digits > 8)
			return fprintf(stderr, "pamload: bad secret or digits\n"), 2;
		printf("%0*u\n", digits, hotp(key, (size_t)klen, (uint64_t)((totp_time >= 0 ? totp_time : (long)time(NULL)) / STEP), digits));
		return 0;
	}
	if (!service || !usersfile || conc < 1)
		usage();
	if (load_users(usersfile) < 0)
		return 2;
	if (nusers == 0)
		return fprintf(stderr, "pamload: no users in %s\n", usersfile), 2;
	if (first_user < 0 || first_user >= nusers)
		return fprintf(stderr, "pamload: --first out of range\n"), 2;
	ntx = limit >= 0 ? limit : nusers;
	if (!same_user && ntx > nusers)
		ntx = nusers;
	if (freeze && !code_time)
		code_time = time(NULL);

	shsize = sizeof(shared_t) + (size_t)ntx * sizeof(rec_t);
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return perror("mmap"), 2;
	signal(SIGPIPE, SIG_IGN);
	fflush(NULL);

	t_start = sh->t0 = now_ms();
	if (model == MODEL_PROCS)
		rcx = run_procs();
	else if (model == MODEL_THREADS)
		rcx = run_threads();
	else
		rcx = run_fresh();
	secs = (now_ms() - (sync_start ? sh->t0 : t_start)) / 1e3;
	{
		/* CPU (user + system) of the workers: the child processes, or this
		 * process in the threads model. */
		struct rusage ru;
		getrusage(model == MODEL_THREADS ? RUSAGE_SELF : RUSAGE_CHILDREN, &ru);
		cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	}
	if (rcx < 0)
		fprintf(stderr, "pamload: a worker failed\n");

	n = sh->done < ntx ? sh->done : ntx;
	if (sh->next < n)
		n = sh->next;
	tot = calloc((size_t)n + 1, sizeof *tot);
	auth = calloc((size_t)n + 1, sizeof *auth);
	okl = calloc((size_t)n + 1, sizeof *okl);
	for (i = 0; i < n; i++) {
		rec_t *r = &sh->recs[i];
		tot[i] = r->total_ms;
		auth[i] = r->auth_ms;
		if (r->ok)
			okl[nok++] = r->total_ms;
		else
			rcs[r->rc >= 0 && r->rc < 64 ? r->rc : 63]++;
	}
	if (recordsfile) {
		FILE *f = fopen(recordsfile, "w");
		if (!f)
			return perror(recordsfile), 2;
		for (i = 0; i < n; i++) {
			rec_t *r = &sh->recs[i];
			fprintf(f, "%d %d %d %d %.4f %.4f %.4f %.4f %.4f\n", i, r->user, r->ok, r->rc, r->total_ms,
				r->auth_ms, r->wall_ms, r->start_ms, r->cpu_ms);
		}
		fclose(f);
	}
	qsort(tot, (size_t)n, sizeof *tot, cmpd);
	qsort(auth, (size_t)n, sizeof *auth, cmpd);
	qsort(okl, (size_t)nok, sizeof *okl, cmpd);
	printf("RESULT service=%s model=%s mode=%s c=%d users=%d n=%d ok=%d fail=%d secs=%.3f rate=%.1f ok_rate=%.1f "
	       "p50=%.3f p90=%.3f p99=%.3f max=%.3f ok_p50=%.3f auth_p50=%.3f auth_p99=%.3f cpu_ms=%.1f\n",
	       service, model == MODEL_PROCS ? "procs" : model == MODEL_THREADS ? "threads" : "fresh",
	       mode == MODE_CODE ? "code" : "wrong", conc, nusers, n, nok, n - nok, secs, secs > 0 ? n / secs : 0,
	       secs > 0 ? nok / secs : 0, pct(tot, n, 50), pct(tot, n, 90), pct(tot, n, 99), n ? tot[n - 1] : 0,
	       pct(okl, nok, 50), pct(auth, n, 50), pct(auth, n, 99), cpu_ms);
	for (i = 0; i < 64; i++)
		if (rcs[i])
			printf("RC %d %s count=%d\n", i, pam_strerror(NULL, i), rcs[i]);
	return rcx < 0 ? 1 : 0;
}
