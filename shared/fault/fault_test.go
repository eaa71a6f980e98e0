package fault

import (
	"errors"
	"fmt"
	"testing"
)

type typed struct{}

func (typed) Error() string { return "typed" }
func (typed) Kind() Kind    { return Conflict }

func TestKindOfFindsTheOutermostClassifiedKind(t *testing.T) {
	cause := errors.New("connection reset")
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"a bare error has no kind", cause, Other},
		{"a classified error has its kind", E("get", Transient, cause), Transient},
		{"an unclassified wrapper defers to its cause", E("apply", Other, E("get", Transient, cause)), Transient},
		{"the outer kind wins", E("apply", Permanent, E("get", Transient, cause)), Permanent},
		{"fmt wrapping keeps the kind", fmt.Errorf("x: %w", E("get", NotFound, cause)), NotFound},
		{"a typed error says its own kind", fmt.Errorf("commit: %w", typed{}), Conflict},
		{"nil has no kind", nil, Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorNamesTheOperationAndTheCause(t *testing.T) {
	err := E("load acme", Transient, errors.New("timeout"))
	if got := err.Error(); got != "load acme: timeout" {
		t.Errorf("Error() = %q", got)
	}
	if E("x", Transient, nil) != nil {
		t.Error("E with a nil cause must be nil")
	}
}
