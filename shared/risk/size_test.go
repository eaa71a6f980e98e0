package risk_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/scenario"
)

// fieldSizes lists the encoded size of each top-level field of v and of its nested structs,
// largest first, so a failure says where the bytes went.
func fieldSizes(prefix string, v reflect.Value) []string {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		b, _ := json.Marshal(v.Field(i).Interface())
		out = append(out, fmt.Sprintf("%s%s %d", prefix, f.Name, len(b)))
		if fv := v.Field(i); fv.Kind() == reflect.Struct && fv.Type().PkgPath() == v.Type().PkgPath() {
			out = append(out, fieldSizes(prefix+f.Name+".", fv)...)
		}
	}
	return out
}

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func TestAnActiveAccountEncodesSmall(t *testing.T) {
	tests := []struct {
		name   string
		users  int
		every  int
		budget int
	}{
		{"25 users active every day of a month", 25, 1, 2 << 10},
		{"2,000 users active every day of a month", 2000, 1, 8 << 10},
		{"2,000 users active once a month, spread over its days", 2000, 31, 8 << 10},
		{"2,000 users active once a week", 2000, 7, 8 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := scenario.ActiveAccount(tt.users, tt.every, t0)
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			sizes := strings.Join(fieldSizes("", reflect.ValueOf(*a)), ", ")
			t.Logf("%d users: %d bytes (%s)", tt.users, len(b), sizes)
			if len(b) > tt.budget {
				t.Errorf("the account encodes to %d bytes, over the %d-byte target: %s", len(b), tt.budget, sizes)
			}
			var back account.Account
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("the compact account does not decode: %v", err)
			}
			if again, _ := json.Marshal(&back); string(again) != string(b) {
				t.Errorf("decoding and encoding again changes the account:\n%s\n%s", b, again)
			}
		})
	}
}
