// Package fault builds errors from an operation, a kind and a cause, so that the edges (the
// HTTP handlers, a queue consumer) choose what to tell the sender from the kind alone, in one
// place: retry later, never retry, or a bug. Modelled on upspin's errors package.
package fault

import (
	"errors"
	"strconv"
	"strings"
)

// Kind classifies an error by what the sender of the request should do about it.
type Kind uint8

// Kinds of error. Other means the kind is not known at this level; KindOf looks deeper.
const (
	Other        Kind = iota // not classified here
	Invalid                  // the input will never be valid: do not retry (400)
	Unauthorized             // missing or wrong credentials (401)
	NotFound                 // no such item (404)
	Conflict                 // a write condition failed; re-read and try again
	Permanent                // the write itself can never succeed (too large, rejected by the store): do not retry (422)
	Transient                // a dependency failed or timed out: retry later (503)
	Internal                 // a bug or an unexpected state (500)
)

var kindNames = [...]string{"other", "invalid", "unauthorized", "not found", "conflict", "permanent", "transient", "internal"}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is an error with the operation that failed, its kind and its cause.
type Error struct {
	Op   string
	Kind Kind
	Err  error
}

// E returns an error for op of kind with cause err; a nil err gives a nil error.
func E(op string, kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Kind: kind, Err: err}
}

// New returns an error for op of kind with a new cause carrying msg.
func New(op string, kind Kind, msg string) error {
	return &Error{Op: op, Kind: kind, Err: errors.New(msg)}
}

// Error renders "op: cause".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(e.Kind.String())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the first classified kind in err's chain (the outermost that says), or Other.
// A value with a method Kind() Kind anywhere in the chain counts too, so packages can type
// their own errors (store conflicts, for one) without wrapping them here.
func KindOf(err error) Kind {
	for err != nil {
		switch e := err.(type) {
		case *Error:
			if e.Kind != Other {
				return e.Kind
			}
		case interface{ Kind() Kind }:
			if k := e.Kind(); k != Other {
				return k
			}
		}
		err = errors.Unwrap(err)
	}
	return Other
}

// Dependency wraps a failure of a dependency (the store, Stripe's API) with op: a failure the
// dependency classified (a permanent size error, a conflict, a missing item) keeps its kind;
// anything else (a timeout, a dropped connection) is transient, so the sender retries.
func Dependency(op string, err error) error {
	if KindOf(err) != Other {
		return E(op, Other, err)
	}
	return E(op, Transient, err)
}

// Is reports whether err's kind is k.
func Is(k Kind, err error) bool { return KindOf(err) == k }
