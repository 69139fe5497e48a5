package containers

import (
	"reflect"
	"testing"
)

func TestParsePasswd(t *testing.T) {
	text := "root:x:0:0:root:/root:/bin/bash\n" +
		"# comment\n\n" +
		"+nis::::::\n" +
		"broken:x:notanumber:0::/:/bin/sh\n" +
		"short:x:7:8\n" +
		"max:x:4294967295:0::/:/bin/sh\n" +
		"  alice:x:1000:1000:Alice A:/home/alice:/bin/sh  \r\n"
	want := []PasswdEntry{
		{Name: "root", UID: 0, GID: 0, Gecos: "root", Home: "/root", Shell: "/bin/bash"},
		{Name: "short", UID: 7, GID: 8},
		{Name: "alice", UID: 1000, GID: 1000, Gecos: "Alice A", Home: "/home/alice", Shell: "/bin/sh"},
	}
	if got := ParsePasswd(text); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestParseGroup(t *testing.T) {
	text := "root:x:0:\nwheel:x:10:alice, bob\nbad:x:-1:\nusers:x:100\n"
	want := []GroupEntry{
		{Name: "root", GID: 0},
		{Name: "wheel", GID: 10, Members: []string{"alice", "bob"}},
		{Name: "users", GID: 100},
	}
	if got := ParseGroup(text); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func testDB() UserDB {
	return UserDB{
		Users: ParsePasswd("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n" +
			"bob:x:1001:1001::/home/bob:/bin/sh\n2000:x:3000:3000::/home/numeric:/bin/sh\n"),
		Groups: ParseGroup("root:x:0:\nwheel:x:10:alice\ndocker:x:20:alice,bob\nalice:x:1000:\nstaff:x:50:\n"),
	}
}

// TestResolve: runc's GetExecUser rules, which podman uses.
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		db         UserDB
		want       ExecUser
		err        string
	}{
		{name: "empty is root", spec: "", db: testDB(), want: ExecUser{UID: 0, GID: 0, Home: "/root", InPasswd: true}},
		{name: "empty without passwd", spec: "", want: ExecUser{}},
		{name: "name with groups", spec: "alice", db: testDB(), want: ExecUser{UID: 1000, GID: 1000, Home: "/home/alice", Sgids: []uint32{10, 20}, InPasswd: true}},
		{name: "uid finds the entry", spec: "1001", db: testDB(), want: ExecUser{UID: 1001, GID: 1001, Home: "/home/bob", Sgids: []uint32{20}, InPasswd: true}},
		{name: "numeric is a uid, not a name", spec: "2000", db: testDB(), want: ExecUser{UID: 2000}},
		{name: "unknown uid", spec: "4242", db: testDB(), want: ExecUser{UID: 4242}},
		{name: "group name replaces sgids", spec: "alice:staff", db: testDB(), want: ExecUser{UID: 1000, GID: 50, Home: "/home/alice", InPasswd: true}},
		{name: "numeric group", spec: "alice:777", db: testDB(), want: ExecUser{UID: 1000, GID: 777, Home: "/home/alice", InPasswd: true}},
		{name: "uid:gid without files", spec: "5:6", want: ExecUser{UID: 5, GID: 6}},
		{name: "unknown name", spec: "mallory", db: testDB(), err: "unable to find user mallory: no matching entries in passwd file"},
		{name: "unknown group", spec: "alice:nogroup", db: testDB(), err: "unable to find group nogroup: no matching entries in group file"},
		{name: "(uid_t)-1", spec: "4294967295", db: testDB(), err: "unable to find user 4294967295: no matching entries in passwd file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.db.Resolve(tc.spec)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParsePasswd(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh\n")
	f.Add("a:b:c\n::::\n+\n")
	f.Fuzz(func(t *testing.T, s string) {
		db := UserDB{Users: ParsePasswd(s), Groups: ParseGroup(s)}
		for _, u := range db.Users {
			if u.Name == "" {
				t.Fatalf("entry without a name from %q", s)
			}
		}
		_, _ = db.Resolve("root")
	})
}
