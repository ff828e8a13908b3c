//go:build root

package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/daemon/store"
	nss "github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// passwdEntry is one line of a fake user database.
type passwdEntry struct {
	name string
	uid  uint32
}

// fakeUserDB is a userDB over entries in NSS order: getpwnam returns the
// first entry of a name, getpwuid the first of a uid. With fold, names are
// matched case-insensitively and returned as stored (sssd with
// case_sensitive = false). err, when set, is every lookup's answer.
func fakeUserDB(entries []passwdEntry, fold bool, err error) userDB {
	same := func(a, b string) bool {
		if fold {
			return strings.EqualFold(a, b)
		}
		return a == b
	}
	toUser := func(e passwdEntry) *nss.User {
		return &nss.User{Name: e.name, UID: e.uid, GID: e.uid}
	}
	return userDB{
		byName: func(name string) (*nss.User, error) {
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if same(e.name, name) {
					return toUser(e), nil
				}
			}
			return nil, nss.UnknownUserError(name)
		},
		byUID: func(uid uint32) (*nss.User, error) {
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if e.uid == uid {
					return toUser(e), nil
				}
			}
			return nil, nss.UnknownUIDError(uid)
		},
		groups: func(u *nss.User) ([]string, error) { return []string{"g-" + u.Name}, nil },
	}
}

// TestResolveAccount resolves names to accounts over fake user databases:
// every name and spelling of an account gives the account's canonical
// name, the name getpwuid gives its uid.
func TestResolveAccount(t *testing.T) {
	alice := passwdEntry{"alice", 1000}
	tests := []struct {
		name    string
		entries []passwdEntry
		fold    bool
		lookup  string
		want    account
		wantErr string // a part of the error; "" for none
	}{
		{"the canonical name", []passwdEntry{alice}, false, "alice",
			account{Name: "alice", UID: 1000, Known: true, Groups: []string{"g-alice"}}, ""},
		{"a second name of the uid (useradd -o)", []passwdEntry{alice, {"alias", 1000}}, false, "alias",
			account{Name: "alice", UID: 1000, Known: true, Groups: []string{"g-alice"}}, ""},
		{"a spelling a case-insensitive backend folds", []passwdEntry{alice}, true, "Alice",
			account{Name: "alice", UID: 1000, Known: true, Groups: []string{"g-alice"}}, ""},
		{"a spelling of a second name", []passwdEntry{alice, {"alias", 1000}}, true, "ALIAS",
			account{Name: "alice", UID: 1000, Known: true, Groups: []string{"g-alice"}}, ""},
		{"a case-sensitive backend: another spelling is no one", []passwdEntry{alice}, false, "Alice",
			account{Name: "Alice"}, ""},
		{"an unknown user stays as typed", []passwdEntry{alice}, false, "mallory",
			account{Name: "mallory"}, ""},
		{"the same name with another uid (another server of a fleet)", []passwdEntry{{"alice", 1500}}, false, "alice",
			account{Name: "alice", UID: 1500, Known: true, Groups: []string{"g-alice"}}, ""},
		{"the uid's name leads to another uid", []passwdEntry{{"dup", 2000}, {"dup", 3000}, {"other", 3000}}, false, "other",
			account{}, "inconsistent user database: user other has uid 3000, whose name dup is also a user with uid 2000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fakeUserDB(tt.entries, tt.fold, nil).resolve(tt.lookup, true)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve(%q) = %+v, %v; want an error with %q", tt.lookup, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve(%q): %v", tt.lookup, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("resolve(%q) = %+v, want %+v", tt.lookup, got, tt.want)
			}
		})
	}

	t.Run("a uid that getpwuid does not know", func(t *testing.T) {
		db := fakeUserDB([]passwdEntry{alice}, false, nil)
		db.byUID = func(uid uint32) (*nss.User, error) { return nil, nss.UnknownUIDError(uid) }
		_, err := db.resolve("alice", false)
		if err == nil || !strings.Contains(err.Error(), "user alice has uid 1000, but the user database has no user for uid 1000") {
			t.Fatalf("got %v, want an error naming the uid", err)
		}
	})
	t.Run("a lookup error fails closed", func(t *testing.T) {
		down := errors.New("nss: ldap server down")
		if _, err := fakeUserDB(nil, false, down).resolve("alice", false); !errors.Is(err, down) {
			t.Fatalf("got %v, want %v", err, down)
		}
	})
}

// aliasFixture is a daemon over a fake user database (through the
// account cache, with listing) with the users erin (uid 1000) and bob
// (uid 1001).
type aliasFixture struct {
	*cacheFixture
	d *testDaemon
}

func newAliasFixture(t *testing.T) *aliasFixture {
	t.Helper()
	f := newCacheFixture(t)
	f.c.withList(f.db.list)
	f.db.users["bob"] = account{Name: "bob", UID: 1001, Known: true, Groups: []string{"bob"}}
	f.db.aliases = map[string]string{}
	saved := accounts
	accounts = f.c
	t.Cleanup(func() { accounts = saved })
	return &aliasFixture{cacheFixture: f, d: startDaemon(t, testConfig(t), nil)}
}

// setAlias makes name another name of the account canon (useradd -o, or
// with unlisted a spelling NSS folds but never lists), as seen once the
// cached answers expire.
func (f *aliasFixture) setAlias(name, canon string, unlisted bool) {
	f.db.mu.Lock()
	delete(f.db.users, name)
	f.db.aliases[name] = canon
	if unlisted {
		if f.db.unlisted == nil {
			f.db.unlisted = map[string]bool{}
		}
		f.db.unlisted[name] = true
	}
	f.db.mu.Unlock()
	f.clock.Add(accountTTL)
}

// addUser adds a user of its own uid.
func (f *aliasFixture) addUser(name string, uid uint32) {
	f.db.mu.Lock()
	f.db.users[name] = account{Name: name, UID: uid, Known: true, Groups: []string{name}}
	f.db.mu.Unlock()
	f.clock.Add(accountTTL)
}

func (f *aliasFixture) check(user string) *protocol.LoginStep {
	f.t.Helper()
	return f.d.startLogin(protocol.Request{User: user, Service: "sshd"})
}

// record returns the stored record of user, or nil.
func (f *aliasFixture) record(user string) *store.Record {
	f.t.Helper()
	rec, err := f.d.db.Get(user)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

// TestAliasNeedsAccountCode: any name or spelling of an enrolled account
// needs the account's code and shares its replay state, its status and its
// audit name; unknown and unenrolled users still get the same answers.
func TestAliasNeedsAccountCode(t *testing.T) {
	f := newAliasFixture(t)
	secret := f.d.importUser("erin")
	f.setAlias("erin2", "erin", false)
	f.setAlias("Erin", "erin", true)

	for _, name := range []string{"erin", "erin2", "Erin"} {
		if res := f.check(name); !shows(res, protocol.OutcomeCodeRequired) {
			t.Errorf("check %s: %+v, want a code to be asked for", name, res)
		}
		st := f.d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: name}).Status
		if st.User != "erin" || st.State != protocol.StateActive {
			t.Errorf("status %s: %+v, want erin's active enrollment", name, st)
		}
	}
	code := f.d.oathtoolCode(secret)
	if res := f.d.verify("erin2", code); !shows(res, protocol.OutcomeAccept) {
		t.Fatalf("verify erin2 with erin's code: %+v", res)
	}
	for _, name := range []string{"Erin", "erin"} {
		if res := f.d.verify(name, code); !shows(res, protocol.OutcomeReplay) {
			t.Errorf("verify %s with the code erin2 used: %+v, want replay", name, res)
		}
	}
	log := f.d.log.String()
	if !strings.Contains(log, "op=verify user=erin ") || !strings.Contains(log, "outcome=accept reason=ok service=test login_name=erin2") {
		t.Errorf("the accept is not audited as erin with login_name=erin2:\n%s", log)
	}
	if strings.Contains(log, "user=erin2") || strings.Contains(log, "user=Erin") {
		t.Errorf("a decision is audited under a name other than the account's:\n%s", log)
	}
	if f.record("erin2") != nil || f.record("Erin") != nil {
		t.Error("a record was made under a name other than the account's")
	}

	// Unknown and unenrolled: the same answers, as before.
	unknown, _ := json.Marshal(f.check("mallory"))
	unenrolled, _ := json.Marshal(f.check("bob"))
	if string(unknown) != string(unenrolled) {
		t.Errorf("check of an unknown user %s, of an unenrolled one %s: they must not differ", unknown, unenrolled)
	}
}

// TestAliasPeer: the account's own uid may act under any of its names,
// on the account; another uid naming it is refused and moves nothing.
func TestAliasPeer(t *testing.T) {
	f := newAliasFixture(t)
	f.addUser(alice, aliceUID)
	f.addUser(bob, bobUID)
	f.addUser("alias1", 5001)
	f.d.importUser("alias1") // kept under alias1, as before names were resolved
	f.setAlias("alias1", alice, false)

	if _, msg := f.d.clientAs(bobUID, &protocol.Request{Op: protocol.OpStatus, User: "alias1"}); !strings.Contains(msg, "you may only act on your own account") {
		t.Fatalf("bob's status of alias1 (alice's): %q, want a refusal", msg)
	}
	if f.record("alias1") == nil || f.record(alice) != nil {
		t.Fatal("a refused request moved the record")
	}
	resp, msg := f.d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpStatus, User: "alias1"})
	if msg != "" || resp.Status.User != alice || resp.Status.State != protocol.StateActive {
		t.Fatalf("alice's status under her second name: %+v %q, want her active enrollment", resp, msg)
	}
	if f.record("alias1") != nil || f.record(alice) == nil {
		t.Error("the record was not moved to alice at her own request")
	}
}

// TestAdoptRecord: a record kept under another name of an account (by a
// version that keyed records by the name as typed) moves to the account,
// its secret sealed again for the account's name: at the first request
// under that name, or at start for names the user database lists; if the
// account has a record of its own, that one is used and a warning names
// both.
func TestAdoptRecord(t *testing.T) {
	tests := []struct {
		name     string
		old      string // the name the record was kept under
		unlisted bool   // old is a spelling NSS folds and never lists
		restart  bool   // the daemon restarts before any request
		use      string // the name the first request gives
	}{
		{"a second name, at its first use", "erin2", false, false, "erin2"},
		{"a spelling, at its first use", "Erin", true, false, "Erin"},
		{"a second name, at start", "erin2", false, true, "erin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAliasFixture(t)
			f.addUser(tt.old, 1002)
			secret := f.d.importUser(tt.old)
			f.setAlias(tt.old, "erin", tt.unlisted)
			if tt.restart {
				f.d.restart()
				f.d.mustDo(&protocol.Request{Op: protocol.OpPing})
				if f.record(tt.old) != nil || f.record("erin") == nil {
					t.Fatalf("after a restart, the record of %s was not moved to erin", tt.old)
				}
			}
			if res := f.check(tt.use); !shows(res, protocol.OutcomeCodeRequired) {
				t.Fatalf("check %s: %+v, want a code to be asked for", tt.use, res)
			}
			if res := f.d.verify("erin", f.d.oathtoolCode(secret)); !shows(res, protocol.OutcomeAccept) {
				t.Fatalf("verify erin with the code of the moved record: %+v", res)
			}
			if f.record(tt.old) != nil {
				t.Errorf("the record of %s is still there", tt.old)
			}
			rec := f.record("erin")
			if rec == nil || rec.User != "erin" {
				t.Fatalf("erin's record: %+v", rec)
			}
			if _, err := f.d.sealer.Open(tt.old, rec.Active.SealedSecret); err == nil {
				t.Error("the moved secret still opens as the old name's: it was not sealed again for erin")
			}
			if !strings.Contains(f.d.log.String(), "record moved to the account's canonical name") {
				t.Errorf("the move was not logged:\n%s", f.d.log.String())
			}
		})
	}

	t.Run("both names have records: the account's is used", func(t *testing.T) {
		f := newAliasFixture(t)
		mine := f.d.importUser("erin")
		f.addUser("erin2", 1002)
		other := f.d.importUser("erin2")
		f.setAlias("erin2", "erin", false)
		f.d.restart()
		if res := f.d.verify("erin2", f.d.oathtoolCode(other)); !shows(res, protocol.OutcomeReject) {
			t.Errorf("verify erin2 with the code of the record under erin2: %+v, want reject", res)
		}
		if res := f.d.verify("erin2", f.d.oathtoolCode(mine)); !shows(res, protocol.OutcomeAccept) {
			t.Errorf("verify erin2 with erin's code: %+v, want accept", res)
		}
		if f.record("erin2") == nil {
			t.Error("the record under erin2 was removed")
		}
		if log := f.d.log.String(); !strings.Contains(log, "two names of one account have records") || !strings.Contains(log, "account=erin other_name=erin2") {
			t.Errorf("no warning naming both:\n%s", log)
		}
	})
}

// TestPolicyNamesTheAccount: a name in a policy list names its account,
// whichever of the account's names or spellings the list or the request
// uses.
func TestPolicyNamesTheAccount(t *testing.T) {
	tests := []struct {
		name             string
		required, exempt []string
		user             string
		want             protocol.Outcome
	}{
		{"required by a folded spelling, asked under the canonical name", []string{"Bob"}, nil, "bob", protocol.OutcomeEnrollRequired},
		{"required by the canonical name, asked under a second name", []string{"bob"}, nil, "bob2", protocol.OutcomeEnrollRequired},
		{"required by a second name, asked under the canonical name", []string{"bob2"}, nil, "bob", protocol.OutcomeEnrollRequired},
		{"exempt by a second name", nil, []string{"bob2"}, "Bob", protocol.OutcomeExempt},
		{"another account's name does not apply", []string{"erin"}, nil, "bob2", protocol.OutcomeNotEnrolled},
		{"an unknown name applies to itself only", []string{"ghost"}, nil, "ghost", protocol.OutcomeEnrollRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAliasFixture(t)
			f.setAlias("bob2", "bob", false)
			f.setAlias("Bob", "bob", true)
			cfg := *f.d.cfg
			cfg.Policy.RequiredUsers, cfg.Policy.ExemptUsers = tt.required, tt.exempt
			f.d.srv.Reload(&cfg)
			if res := f.check(tt.user); !shows(res, tt.want) {
				t.Errorf("check %s with required %v, exempt %v: %+v, want %s", tt.user, tt.required, tt.exempt, res, tt.want)
			}
		})
	}
}

// TestAliasNeverReachesReservedRecords: a name whose account's canonical
// name starts with the reserved prefix of the daemon's own records is
// refused, not resolved to that record.
func TestAliasNeverReachesReservedRecords(t *testing.T) {
	f := newAliasFixture(t)
	reserved := sourceRecordPrefix + "203.0.113.9"
	f.addUser(reserved, 3000)
	f.setAlias("sneaky", reserved, true)
	_, err := f.d.tryLogin(protocol.Request{User: "sneaky", Service: "sshd"}, "")
	if errCode(err) != protocol.ErrInternal {
		t.Fatalf("check of a name resolving to %q: %v, want an internal error (a denial)", reserved, err)
	}
	if !strings.Contains(f.d.log.String(), "starts with the reserved") {
		t.Errorf("the log does not say why:\n%s", f.d.log.String())
	}
}

// TestImportUnderASecondName: importing, under a second name of an
// enrolled account, the secret the account already has (an import of
// every user's google-authenticator file, where the names share a home)
// changes nothing and succeeds; another secret is still a conflict.
func TestImportUnderASecondName(t *testing.T) {
	f := newAliasFixture(t)
	secret := f.d.importUser("erin")
	f.setAlias("erin2", "erin", false)
	before := f.record("erin")
	imp := func(secret string) error {
		_, err := f.d.do(&protocol.Request{Op: protocol.OpAdminImport, User: "erin2", Import: &protocol.Import{
			Secret: secret, Algorithm: "SHA1", Digits: 6, Period: 30,
		}})
		return err
	}
	if err := imp(otp.EncodeSecret(secret)); err != nil {
		t.Fatalf("importing erin's own secret under erin2: %v", err)
	}
	if !sameRecord(before, f.record("erin")) {
		t.Error("importing the same secret under a second name changed erin's record")
	}
	if !strings.Contains(f.d.log.String(), "user=erin peer_uid=0") || !strings.Contains(f.d.log.String(), "reason=admin_import_same_account") {
		t.Errorf("not audited as admin_import_same_account:\n%s", f.d.log.String())
	}
	other, err := otp.GenerateSecret(20)
	if err != nil {
		t.Fatal(err)
	}
	if err := imp(otp.EncodeSecret(other)); errCode(err) != protocol.ErrConflict {
		t.Fatalf("importing another secret under erin2: %v, want a conflict", err)
	}
}
